//! What a dashboard request asks for, from its method, path and query.

use crate::web::request::query_value;
use crate::web::response::Status;

/// A page, a document or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Page,
    Script,
    Style,
    State,
    Metrics,
    Health,
    /// A `POST` that changes the queue.
    Act(Action),
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Cancel(u64),
    Retry(u64),
    RetryModule(String),
    Pause(String),
    Resume(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Cancel(id) => write!(f, "cancel of job {id}"),
            Action::Retry(id) => write!(f, "retry of job {id}"),
            Action::RetryModule(m) => write!(f, "retry of module {m}'s failed jobs"),
            Action::Pause(m) => write!(f, "pause of module {m}"),
            Action::Resume(m) => write!(f, "resume of module {m}"),
        }
    }
}

/// The route, and whether only the head is wanted (`HEAD`); `Err` is the
/// status to refuse with (`404` unknown path, `405` wrong method, `400` a
/// bad query).
pub fn route(method: &str, path: &str, query: &str) -> Result<(Route, bool), Status> {
    let read = match path {
        "/" | "/index.html" => Some(Route::Page),
        "/app.js" => Some(Route::Script),
        "/app.css" => Some(Route::Style),
        "/api/state" => Some(Route::State),
        "/metrics" => Some(Route::Metrics),
        "/healthz" => Some(Route::Health),
        _ => None,
    };
    if let Some(read) = read {
        return match method {
            "GET" => Ok((read, false)),
            "HEAD" => Ok((read, true)),
            _ => Err(Status::MethodNotAllowed),
        };
    }
    let acts = ["/api/cancel", "/api/retry", "/api/pause", "/api/resume"];
    if !acts.contains(&path) {
        return Err(Status::NotFound);
    }
    if method != "POST" {
        return Err(Status::MethodNotAllowed);
    }
    let id = || {
        query_value(query, "id")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(Status::BadRequest)
    };
    let module = || {
        query_value(query, "module")
            .filter(|m| {
                !m.is_empty()
                    && m.len() <= crate::run::name::MAX_MODULE_NAME
                    && crate::run::name::clean_module_name(m.as_bytes()) == *m
            })
            .map(str::to_string)
            .ok_or(Status::BadRequest)
    };
    let action = match path {
        "/api/cancel" => Action::Cancel(id()?),
        "/api/retry" if query_value(query, "module").is_some() => Action::RetryModule(module()?),
        "/api/retry" => Action::Retry(id()?),
        "/api/pause" => Action::Pause(module()?),
        "/api/resume" => Action::Resume(module()?),
        _ => return Err(Status::NotFound),
    };
    Ok((Route::Act(action), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_actions_route() {
        assert_eq!(route("GET", "/", ""), Ok((Route::Page, false)));
        assert_eq!(route("HEAD", "/api/state", ""), Ok((Route::State, true)));
        assert_eq!(route("GET", "/metrics", ""), Ok((Route::Metrics, false)));
        assert_eq!(
            route("POST", "/api/cancel", "id=12"),
            Ok((Route::Act(Action::Cancel(12)), false))
        );
        assert_eq!(
            route("POST", "/api/retry", "module=render"),
            Ok((Route::Act(Action::RetryModule("render".into())), false))
        );
        assert_eq!(
            route("POST", "/api/retry", "id=3"),
            Ok((Route::Act(Action::Retry(3)), false))
        );
        assert_eq!(
            route("POST", "/api/resume", "module=a"),
            Ok((Route::Act(Action::Resume("a".into())), false))
        );
    }

    #[test]
    fn wrong_methods_paths_and_queries_are_refused() {
        assert_eq!(route("POST", "/", ""), Err(Status::MethodNotAllowed));
        assert_eq!(
            route("GET", "/api/cancel", "id=1"),
            Err(Status::MethodNotAllowed)
        );
        assert_eq!(route("GET", "/nothing", ""), Err(Status::NotFound));
        assert_eq!(
            route("POST", "/api/cancel", "id=x"),
            Err(Status::BadRequest)
        );
        assert_eq!(route("POST", "/api/cancel", ""), Err(Status::BadRequest));
        assert_eq!(
            route("GET", "/api/cancel", ""),
            Err(Status::MethodNotAllowed)
        );
        assert_eq!(
            route("POST", "/api/pause", "module=../x"),
            Err(Status::BadRequest)
        );
        assert_eq!(
            route("DELETE", "/api/state", ""),
            Err(Status::MethodNotAllowed)
        );
    }
}
