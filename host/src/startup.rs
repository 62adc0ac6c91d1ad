//! What `up` prints once it is listening, in Spin's format.

use crate::app::App;
use crate::routes::Target;
use std::fmt::Write;
use std::net::SocketAddr;

/// The startup banner: `Serving <url>` and the routes in match-priority
/// order, each with its component's description if any.
pub fn banner(app: &App, addr: SocketAddr) -> String {
    let base = format!("http://{addr}");
    let mut out = format!("\nServing {base}\nAvailable Routes:\n");
    for route in app.router.routes() {
        let name = match route.target() {
            Target::Component(id) => id.clone(),
            Target::StaticResponse(_) => "(static response)".to_owned(),
        };
        let path = match route.display_path() {
            "/" => String::new(),
            path => path.to_owned(),
        };
        let wildcard = if route.is_wildcard() { " (wildcard)" } else { "" };
        let _ = writeln!(out, "  {name}: {base}{path}{wildcard}");
        if let Target::Component(id) = route.target()
            && let Some(description) = app.descriptions.get(id)
        {
            let _ = writeln!(out, "    {description}");
        }
    }
    out
}

/// Prints the banner to stdout.
pub fn print_routes(app: &App, addr: SocketAddr) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner(app, addr).as_bytes());
    let _ = stdout.flush();
}
