//! Declarations that every service over the driver would otherwise write
//! out again.

/// The [`hyper::service::Service`] of a cheap-to-clone service whose
/// `handle(req)` answers every request: a clone answers it in the future.
/// With `tower` first, also the [`tower::Service`] that calls it (always
/// ready). The service's own type parameters come in `[...]`; `B` is the
/// request body's, bounded by the `where` clause.
macro_rules! service_via_handle {
    ([$($param:ident),*] $service:ty => $response:ty, where $($bounds:tt)*) => {
        impl<$($param,)* B> hyper::service::Service<http::Request<B>> for $service
        where
            $($bounds)*
        {
            type Response = http::Response<$response>;
            type Error = std::convert::Infallible;
            type Future = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
            >;

            fn call(&self, req: http::Request<B>) -> Self::Future {
                let this = self.clone();
                Box::pin(async move { Ok(this.handle(req).await) })
            }
        }
    };
    (tower [$($param:ident),*] $service:ty => $response:ty, where $($bounds:tt)*) => {
        $crate::http::service_via_handle!([$($param),*] $service => $response, where $($bounds)*);

        impl<$($param,)* B> tower::Service<http::Request<B>> for $service
        where
            $($bounds)*
        {
            type Response = http::Response<$response>;
            type Error = std::convert::Infallible;
            type Future = <Self as hyper::service::Service<http::Request<B>>>::Future;

            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                hyper::service::Service::call(self, req)
            }
        }
    };
}
pub(crate) use service_via_handle;

/// `Clone` for handles whose one field `shared` is an `Arc` or a `Weak` of
/// the service's core: a derive would ask for `E: Clone` and `A: Clone`,
/// which a handle does not need.
macro_rules! clone_handles {
    ($($handle:ident),+) => {$(
        impl<E, A> Clone for $handle<E, A> {
            fn clone(&self) -> Self {
                Self {
                    shared: self.shared.clone(),
                }
            }
        }
    )+};
}
pub(crate) use clone_handles;

/// `prefix`, `matches` and `inspect` of a dialect's service (SockJS,
/// SSE): a [`PollingService`](super::PollingService) of `$endpoint` in its
/// `driver` field.
#[cfg(any(feature = "sockjs", feature = "sse"))]
macro_rules! mounted_service_accessors {
    ($endpoint:ty) => {
        /// The prefix the service is mounted at.
        pub fn prefix(&self) -> &str {
            self.driver.mount()
        }

        /// Whether `path` is under this service's prefix.
        pub fn matches(&self, path: &str) -> bool {
            self.driver.matches(path)
        }

        /// Runs `f` on the endpoint (between two inputs) and returns its
        /// result. For statistics and tests (`session_count`,
        /// `connection_count`). Always `Some` (it was `None` when the
        /// endpoint was a task that could be gone).
        pub async fn inspect<R: Send + 'static>(
            &self,
            f: impl FnOnce(&$endpoint) -> R + Send + 'static,
        ) -> Option<R> {
            Some(self.driver.with(|server, _, _, _| f(server)))
        }
    };
}
#[cfg(any(feature = "sockjs", feature = "sse"))]
pub(crate) use mounted_service_accessors;
