//! A passed step-up, kept in the session: whose factors were checked, in
//! which sign-in, and when. Written by the account pages, read before a reveal.

use std::time::Duration;

/// Session key: the step-up this session last passed (a [`StepUp`]).
pub const STEP_UP_KEY: &str = "step_up";

/// A passed step-up: whose factors were checked, in which sign-in, and when.
/// It opens reveals for that person in that sign-in only, never for whoever
/// signs in next in the same browser.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepUp {
    pub user_id: i64,
    pub generation: String,
    pub at_us: i64,
}

impl StepUp {
    /// A step-up by `user_id` in the sign-in `generation`, at `at_us`.
    pub fn new(user_id: i64, generation: &str, at_us: i64) -> Self {
        Self {
            user_id,
            generation: generation.to_owned(),
            at_us,
        }
    }
}

impl StepUp {
    /// Records a passed step-up by `user_id` in the sign-in `generation` at
    /// `at_us` in the session (replacing any earlier one).
    pub fn record(
        session: &actix_session::Session,
        user_id: i64,
        generation: &str,
        at_us: i64,
    ) -> Result<(), crate::web::AppError> {
        session
            .insert(STEP_UP_KEY, Self::new(user_id, generation, at_us))
            .map_err(|e| crate::web::AppError::Internal(format!("session: {e}")))
    }
}

/// Whether `stepped` is a step-up by `user_id` in the sign-in `generation`,
/// still fresh at `now_us`.
pub fn step_up_fresh(
    stepped: Option<&StepUp>,
    user_id: i64,
    generation: &str,
    now_us: i64,
    window: Duration,
) -> bool {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    stepped.is_some_and(|s| {
        s.user_id == user_id
            && !s.generation.is_empty()
            && s.generation == generation
            && s.at_us <= now_us
            && now_us - s.at_us <= window
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_up_is_fresh_only_inside_the_window() {
        let w = Duration::from_secs(300);
        let at = |t| Some(StepUp::new(1, "g1", t));
        let fresh = |s: Option<StepUp>, now| step_up_fresh(s.as_ref(), 1, "g1", now, w);
        assert!(fresh(at(1_000), 1_000 + 299_000_000));
        assert!(!fresh(at(1_000), 1_000 + 301_000_000));
        assert!(!fresh(None, 1_000));
        // A timestamp from the future (clock moved back, forged) is not fresh.
        assert!(!fresh(at(2_000), 1_000));
    }

    #[test]
    fn a_step_up_opens_nothing_for_another_user_or_another_sign_in() {
        let w = Duration::from_secs(300);
        let a = StepUp::new(1, "g1", 1_000);
        assert!(step_up_fresh(Some(&a), 1, "g1", 2_000, w));
        assert!(!step_up_fresh(Some(&a), 2, "g1", 2_000, w));
        assert!(!step_up_fresh(Some(&a), 1, "g2", 2_000, w));
        // Sessions from before generations existed never count as stepped up.
        let legacy = StepUp::new(1, "", 1_000);
        assert!(!step_up_fresh(Some(&legacy), 1, "", 2_000, w));
    }
}
