//! The baselines: native hyper servers, each in its own process so it
//! competes for the same cores as the host does. `hello` answers `hello`;
//! `pg` runs the same statements as the pg-bench component over a
//! tokio-postgres pool of the same size.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

type Reply = Response<Full<Bytes>>;

/// Serves `answer` on `listen` until killed; prints `listening <addr>`.
fn serve<F, Fut>(listen: SocketAddr, answer: F) -> Result<()>
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("listening {}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answer = answer.clone();
                        async move { Ok::<_, Infallible>(answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

pub fn serve_hello(listen: SocketAddr) -> Result<()> {
    serve(listen, |_request| async { text(StatusCode::OK, "hello\n") })
}

pub fn serve_pg(listen: SocketAddr, db_url: &str, pool_size: usize) -> Result<()> {
    let config: tokio_postgres::Config = db_url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = Arc::new(
        deadpool_postgres::Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?,
    );
    serve(listen, move |request| {
        let pool = pool.clone();
        async move {
            match answer_pg(&pool, request).await {
                Ok(body) => text(StatusCode::OK, body),
                Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            }
        }
    })
}

async fn answer_pg(
    pool: &deadpool_postgres::Pool,
    request: Request<hyper::body::Incoming>,
) -> Result<String> {
    let client = pool.get().await?;
    match request.uri().path() {
        "/open" => Ok("opened".into()),
        "/select" => {
            let id: i64 = request
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("id="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let statement = client
                .prepare_cached("SELECT name FROM items WHERE id = $1")
                .await?;
            let rows = client.query(&statement, &[&id]).await?;
            Ok(rows
                .first()
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_default())
        }
        "/insert" => {
            let statement = client
                .prepare_cached("INSERT INTO events (name) VALUES ($1)")
                .await?;
            client.execute(&statement, &[&"bench"]).await?;
            Ok("inserted".into())
        }
        _ => anyhow::bail!("unknown path"),
    }
}

/// A baseline server process, killed on drop.
pub struct Baseline {
    child: Child,
    addr: String,
}

impl Baseline {
    pub fn hello() -> Result<Self> {
        Self::start(&["native-hello"])
    }

    pub fn pg(db_url: &str, pool_size: usize) -> Result<Self> {
        Self::start(&[
            "native-pg",
            "--db-url",
            db_url,
            "--pool-size",
            &pool_size.to_string(),
        ])
    }

    fn start(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .context("the baseline server did not start")?
            .to_owned();
        Ok(Baseline { child, addr })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
