//! The baseline: a native hyper server answering `hello`, in its own process
//! so it competes for the same cores as the host does.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Serves hello on `listen` until killed; prints `listening <addr>`.
pub fn serve_hello(listen: SocketAddr) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("listening {}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_request| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}

/// The baseline server process, killed on drop.
pub struct NativeHello {
    child: Child,
    addr: String,
}

impl NativeHello {
    pub fn start() -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["native-hello", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .context("native hello did not start")?
            .to_owned();
        Ok(NativeHello { child, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hello", self.addr)
    }
}

impl Drop for NativeHello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
