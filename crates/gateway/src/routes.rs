//! The route table: which path prefix goes to which service, and who may call it.
//!
//! The defaults come from the list of services: each names its public path prefixes and who
//! may call them ([`kit::auth::RouteSpec`], written beside its policy). `PMS_GATEWAY_ROUTES`
//! adds or replaces routes, e.g. for a service outside pms:
//!
//! ```text
//! PMS_GATEWAY_ROUTES="/api/appointments=http://10.0.0.5:8080, /api/billing=http://billing:8080@billing+admin"
//! ```
//!
//! Each entry is `PREFIX=URL` with an optional `@ACCESS`: `public` (no token), `authenticated`
//! (any valid token; the default) or roles joined by `+` (a token with one of them).

pub use kit::auth::Access;
use kit::{auth::Role, service::Peers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// A path prefix matched at segment boundaries: `/api/users` matches `/api/users` and
    /// `/api/users/x`, not `/api/usersx`.
    pub prefix: String,
    /// Base URL of the service, e.g. `http://127.0.0.1:8081`.
    pub upstream: String,
    pub access: Access,
}

impl Route {
    pub fn new(prefix: &str, upstream: &str, access: Access) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            access,
        }
    }

    fn matches(&self, path: &str) -> bool {
        path.strip_prefix(&self.prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The routes every service of `peers` declares, to its base URL.
pub fn defaults(peers: &Peers) -> Vec<Route> {
    peers
        .iter()
        .flat_map(|peer| {
            peer.service.routes.iter().map(|spec| Route::new(spec.prefix, &peer.url, spec.access()))
        })
        .collect()
}

/// The route for `path`: the longest matching prefix.
pub fn find<'a>(routes: &'a [Route], path: &str) -> Option<&'a Route> {
    routes.iter().filter(|r| r.matches(path)).max_by_key(|r| r.prefix.len())
}

/// Parses `PMS_GATEWAY_ROUTES` entries.
pub fn parse(spec: &str) -> Result<Vec<Route>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (prefix, rest) =
                entry.split_once('=').ok_or_else(|| format!("`{entry}`: expected PREFIX=URL"))?;
            let (url, access) = match rest.rsplit_once('@') {
                Some((url, access)) => (url, parse_access(access)?),
                None => (rest, Access::Authenticated),
            };
            if !prefix.starts_with('/') {
                return Err(format!("`{prefix}`: a prefix starts with /"));
            }
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!("`{url}`: upstreams are http:// or https:// URLs"));
            }
            Ok(Route::new(prefix.trim(), url.trim(), access))
        })
        .collect()
}

fn parse_access(text: &str) -> Result<Access, String> {
    match text.trim() {
        "public" => Ok(Access::Public),
        "authenticated" => Ok(Access::Authenticated),
        roles => roles
            .split('+')
            .map(|r| Role::parse(r.trim()).ok_or_else(|| format!("`{r}` is not a role")))
            .collect::<Result<Vec<_>, _>>()
            .map(Access::Roles),
    }
}

/// `extra` routes replace defaults with the same prefix and add the others.
pub fn merge(mut routes: Vec<Route>, extra: Vec<Route>) -> Vec<Route> {
    for route in extra {
        routes.retain(|r| r.prefix != route.prefix);
        routes.push(route);
    }
    routes
}

#[cfg(test)]
mod tests {
    use kit::{
        auth::RouteSpec,
        service::{Peer, Service},
    };

    use super::*;

    const fn service(name: &'static str, routes: &'static [RouteSpec]) -> Service {
        Service {
            name,
            bind_var: "PMS_TEST_BIND",
            default_port: 0,
            grpc: None,
            schema: None,
            routes,
            openapi: utoipa::openapi::OpenApi::default,
            launch: |_| Box::pin(async { Ok(()) }),
        }
    }

    static AUTH: Service = service(
        "auth",
        &[
            RouteSpec::public("/auth"),
            RouteSpec::authenticated("/api/users/me"),
            RouteSpec::roles("/api/users", &[Role::Admin]),
        ],
    );
    static PATIENTS: Service = service("patients", &[RouteSpec::authenticated("/api/patients")]);

    fn defaults(auth: &str, patients: &str) -> Vec<Route> {
        super::defaults(&Peers::new(vec![
            Peer { service: &AUTH, url: auth.into() },
            Peer { service: &PATIENTS, url: patients.into() },
        ]))
    }

    #[test]
    fn the_longest_prefix_wins_at_segment_boundaries() {
        let routes = defaults("http://auth", "http://patients");
        let upstream = |p: &str| find(&routes, p).map(|r| (r.upstream.as_str(), r.access.clone()));
        assert_eq!(upstream("/api/users/me/password"), Some(("http://auth", Access::Authenticated)));
        assert_eq!(upstream("/api/users/123"), Some(("http://auth", Access::Roles(vec![Role::Admin]))));
        assert_eq!(upstream("/api/patients").map(|r| r.0), Some("http://patients"));
        assert_eq!(upstream("/api/patients/1/history").map(|r| r.0), Some("http://patients"));
        assert_eq!(upstream("/api/patientsx"), None);
        assert_eq!(upstream("/nothing"), None);
    }

    #[test]
    fn configured_routes_add_and_replace() {
        let extra = parse(" /api/billing=http://billing:8080@billing+admin , /auth=http://auth2/@public")
            .expect("valid");
        assert_eq!(extra[0].access, Access::Roles(vec![Role::Billing, Role::Admin]));
        let routes = merge(defaults("http://auth", "http://patients"), extra);
        assert_eq!(find(&routes, "/auth/login").map(|r| r.upstream.as_str()), Some("http://auth2"));
        assert_eq!(
            find(&routes, "/api/billing/accounts/1").map(|r| r.upstream.as_str()),
            Some("http://billing:8080")
        );
        assert!(parse("/x=ftp://y").is_err());
        assert!(parse("/x=https://y").is_ok(), "TLS to the services is possible");
        assert!(parse("/x=http://y@wizard").is_err());
        assert!(parse("nothing").is_err());
    }
}
