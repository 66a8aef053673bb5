//! The redirect to the login page, for a browser that `Authenticated` turned away: a 401
//! catcher the fairing registers, unless the application has its own.

use std::sync::{Mutex, PoisonError};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rocket::catcher::{self, Catcher, Handler};
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::response::{Redirect, Responder};

/// What a `next` value keeps unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Marks a request whose `Authenticated` guard found nobody logged in, with the last route
/// it turned away, so that a 401 a lower-ranked route answers itself is not taken for
/// ours.
struct LoginRequired(Mutex<Option<RouteId>>);

/// A route, as no two routes of one app are the same: method, path and rank.
#[derive(PartialEq)]
struct RouteId(Method, String, isize);

fn route_id(req: &Request<'_>) -> Option<RouteId> {
    req.route()
        .map(|route| RouteId(route.method, route.uri.to_string(), route.rank))
}

/// Records that `Authenticated` turned `req` away for want of a logged-in user, on the
/// route it is on now (a lower-ranked route may turn it away again).
pub(crate) fn refused(req: &Request<'_>) {
    let marker = req.local_cache(|| LoginRequired(Mutex::new(None)));
    *marker.0.lock().unwrap_or_else(PoisonError::into_inner) = route_id(req);
}

/// Where to send `req`, a browser's navigation that `Authenticated` turned away (and no
/// route after it answered): `login_path?next=<path and query>`. `None` for anything else,
/// a script's request or an API client's included.
fn login_location(login_path: &str, req: &Request<'_>) -> Option<String> {
    let marker = req.local_cache(|| LoginRequired(Mutex::new(None)));
    let refused_by = marker.0.lock().unwrap_or_else(PoisonError::into_inner);
    if refused_by.is_none() || *refused_by != route_id(req) {
        return None;
    }

    let navigation = matches!(req.method(), Method::Get | Method::Head);
    let scripted = req.headers().get_one("X-Requested-With").is_some()
        || req
            .accept()
            .is_some_and(|accept| accept.preferred().media_type().is_json());
    (navigation && !scripted).then(|| {
        let next = utf8_percent_encode(&req.uri().to_string(), QUERY_VALUE).to_string();
        format!("{login_path}?next={next}")
    })
}

/// The 401 catcher: a redirect to the login page for a browser that `Authenticated`
/// turned away, and for every other 401 what `fallback` answers (the application's
/// default catcher, or Rocket's).
#[derive(Clone)]
struct LoginCatcher {
    login_path: String,
    fallback: Box<dyn Handler>,
}

#[rocket::async_trait]
impl Handler for LoginCatcher {
    async fn handle<'r>(&self, status: Status, req: &'r Request<'_>) -> catcher::Result<'r> {
        match login_location(&self.login_path, req) {
            Some(location) => Redirect::to(location).respond_to(req),
            None => self.fallback.handle(status, req).await,
        }
    }
}

/// The login redirect's catcher for `login_path`, to register at `/` when the application
/// has no 401 catcher there; `catchers` are those it has, whose default catcher at `/`
/// (if any) answers the 401s that are not a stranger's navigation.
pub(crate) fn catcher<'a>(
    login_path: &str,
    mut catchers: impl Iterator<Item = &'a Catcher>,
) -> Option<Catcher> {
    let at_root: Vec<&Catcher> = catchers.by_ref().filter(|c| c.base.path() == "/").collect();
    if at_root.iter().any(|c| c.code == Some(401)) {
        return None;
    }

    let fallback = match at_root.into_iter().find(|c| c.code.is_none()) {
        Some(default) => default.handler.clone(),
        None => Catcher::default().handler,
    };
    let handler = LoginCatcher {
        login_path: login_path.to_owned(),
        fallback,
    };
    let mut catcher = Catcher::new(401, handler);
    catcher.name = Some("rocket_server_sessions login redirect".into());
    Some(catcher)
}
