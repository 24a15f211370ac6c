//! Handing each new session of a dialect (a SockJS socket, an SSE session)
//! to the application's handler in a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use duplex_polling::Endpoint;

use super::app::Application;
use super::driver::{PollingService, WeakPollingService};

/// The application's handler, boxed so that a service is one type whatever
/// the closure.
type Handler<T> = Arc<dyn Fn(T) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Spawns the handler on each session built from the live service. It holds
/// the service weakly: it lives inside the service's own application, which
/// a strong handle would keep alive forever.
pub(crate) struct SessionSpawner<E, A, T> {
    driver: WeakPollingService<E, A>,
    handler: Handler<T>,
}

impl<E, A, T> SessionSpawner<E, A, T>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    /// A spawner of `handler` for the sessions of `driver`.
    pub(crate) fn new<F, Fut>(driver: &PollingService<E, A>, handler: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            driver: driver.downgrade(),
            handler: Arc::new(move |session| Box::pin(handler(session))),
        }
    }

    /// Builds the session with `make` from the live service and runs the
    /// handler on it in a new task; nothing once the service is gone.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the handler is a task).
    pub(crate) fn spawn(&self, make: impl FnOnce(PollingService<E, A>) -> T) {
        if let Some(driver) = self.driver.upgrade() {
            tokio::spawn((self.handler)(make(driver)));
        }
    }
}
