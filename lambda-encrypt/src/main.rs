//! The Lambda entry point: build once, then serve Lex V2 code-hook events.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_encrypt::logging::init();
    let handler = match lambda_encrypt::handler_from_env().await {
        Ok(h) => Arc::new(h),
        Err(e) => {
            tracing::error!(error_kind = e.kind(), error = %e, "lambda init failed");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            handler
                .handle(event.payload)
                .await
                .map_err(|e| lambda_runtime::Diagnostic {
                    error_type: e.kind().to_owned(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}
