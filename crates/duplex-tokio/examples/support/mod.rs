//! What the runnable examples share: the listener, on the address given
//! as the first argument.

/// Binds the address given as the program's first argument
/// (`127.0.0.1:3000` without one).
pub(crate) async fn listener() -> std::io::Result<tokio::net::TcpListener> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    tokio::net::TcpListener::bind(&addr).await
}
