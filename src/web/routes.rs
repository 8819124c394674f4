//! The route table: every capability registers its routes through [`Routes`],
//! which records each one, so the router and the route x role matrix test
//! read the same list (`startup::route_table`).

use actix_web::dev::Handler;
use actix_web::{web, FromRequest, Responder};

/// Who a route is for, as its handler's extractor enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// Signed-in users of this role (by its name).
    Role(&'static str),
}

/// One registered route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Registers routes with actix and records them.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    table: &'a mut Vec<Route>,
}

impl<'a> Routes<'a> {
    pub fn new(cfg: &'a mut web::ServiceConfig, table: &'a mut Vec<Route>) -> Self {
        Self { cfg, table }
    }

    pub fn get<F, Args>(&mut self, path: &'static str, access: Access, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add("GET", path, access, web::get().to(handler))
    }

    pub fn post<F, Args>(&mut self, path: &'static str, access: Access, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add("POST", path, access, web::post().to(handler))
    }

    fn add(
        &mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        route: actix_web::Route,
    ) -> &mut Self {
        self.cfg.route(path, route);
        self.table.push(Route {
            method,
            path,
            access,
        });
        self
    }
}
