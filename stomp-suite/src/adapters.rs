//! The adapters behind the suite's traits: `stomp-blocking` as it is, the
//! async ones by blocking on a runtime kept for the test binary.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use stomp_driver::delivery::Delivery;
use stomp_driver::{Config, Empty, Error, Events};
use stomp_proto::client::{CloseReason, SendOptions, SessionInfo, Stats, SubscribeOptions, Tapped};

use crate::{Adapter, SuiteClient, SuiteInbox, SuiteMsg, SuiteSub, SuiteTap, SuiteTx};

/// `stomp-blocking`.
#[derive(Debug)]
pub enum Blocking {}

impl Adapter for Blocking {
    const NAME: &'static str = "blocking";
    type Client = stomp_blocking::Client;

    fn connect(config: Config) -> Result<stomp_blocking::Client, Error> {
        stomp_blocking::Client::connect_with(config)
    }
}

impl SuiteClient for stomp_blocking::Client {
    type Sub = stomp_blocking::Subscription;
    type Msg = stomp_blocking::Message;
    type Unhandled = stomp_blocking::Unhandled;
    type Tap = stomp_blocking::Tap;
    type Tx<'a> = stomp_blocking::Transaction<'a>;

    fn info(&self) -> SessionInfo {
        self.info().clone()
    }

    fn send_with(&self, destination: &str, body: Bytes, options: SendOptions) -> Result<(), Error> {
        self.send_with(destination, body, options)
    }

    fn subscribe_with(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Self::Sub, Error> {
        self.subscribe_with(destination, options)
    }

    fn transaction(&self) -> Result<Self::Tx<'_>, Error> {
        self.transaction()
    }

    fn stats(&self) -> Result<Stats, Error> {
        self.stats()
    }

    fn events(&self) -> Events {
        self.events().clone()
    }

    fn is_connected(&self) -> bool {
        self.is_connected()
    }

    fn ack_id(&self, subscription: &str, id: &str, nack: bool) -> Result<(), Error> {
        match nack {
            true => self.nack_id(subscription, id),
            false => self.ack_id(subscription, id),
        }
    }

    fn transaction_with_id(&self, id: &str) -> Result<Self::Tx<'_>, Error> {
        self.transaction_with_id(id)
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason()
    }

    fn acknowledge_in(
        &self,
        message: &Self::Msg,
        tx: &Self::Tx<'_>,
        nack: bool,
    ) -> Result<(), Error> {
        match nack {
            true => message.nack_in(tx),
            false => message.ack_in(tx),
        }
    }

    fn request(
        &self,
        destination: &str,
        body: Bytes,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Self::Msg, Error> {
        self.request_with(destination, body, options, timeout)
    }

    fn reply(&self, request: &Self::Msg, body: Bytes) -> Result<(), Error> {
        self.reply(request, body)
    }

    fn unhandled(&self) -> Self::Unhandled {
        self.unhandled()
    }

    fn tap(&self) -> Self::Tap {
        self.tap()
    }

    fn health(&self) -> Result<stomp_driver::driver::Health, Error> {
        self.health()
    }

    fn disconnect(self) -> Result<(), Error> {
        self.disconnect()
    }
}

impl SuiteTap for stomp_blocking::Tap {
    fn recv_timeout(&self, timeout: Duration) -> Result<Tapped, Empty> {
        self.recv_timeout(timeout)
    }
}

impl SuiteInbox for stomp_blocking::Unhandled {
    type Msg = stomp_blocking::Message;

    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty> {
        self.recv_timeout(timeout)
    }
}

impl SuiteSub for stomp_blocking::Subscription {
    type Msg = stomp_blocking::Message;

    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty> {
        self.recv_timeout(timeout)
    }

    fn unsubscribe(self) -> Result<(), Error> {
        self.unsubscribe()
    }

    fn unsubscribe_with_receipt(self) -> Result<(), Error> {
        self.unsubscribe_with_receipt()
    }
}

impl SuiteMsg for stomp_blocking::Message {
    fn body(&self) -> &Bytes {
        Delivery::body(self)
    }

    fn header(&self, name: &str) -> Option<&str> {
        Delivery::header(self, name)
    }

    fn ack(&self) -> Result<(), Error> {
        self.ack()
    }

    fn nack(&self) -> Result<(), Error> {
        self.nack()
    }

    fn decoded_text(&self) -> Option<String> {
        // The message's own (through `Delivery`), not this trait's.
        Delivery::text(self).map(String::from)
    }

    fn ack_with_receipt(&self, nack: bool) -> Result<(), Error> {
        match nack {
            true => self.nack_with_receipt(),
            false => self.ack_with_receipt(),
        }
    }

    fn ack_handle_id(&self) -> Option<String> {
        self.ack_handle().map(|h| h.id().to_string())
    }
}

impl SuiteTx for stomp_blocking::Transaction<'_> {
    fn send(&self, destination: &str, body: &str) -> Result<(), Error> {
        self.send(destination, body.to_string())
    }

    fn commit(self) -> Result<(), Error> {
        self.commit()
    }

    fn abort(self) -> Result<(), Error> {
        self.abort()
    }
}

/// The async adapters' calls, run to completion from a test thread.
pub trait BlockOn {
    /// Runs `future` to completion.
    fn block_on<F: std::future::Future>(future: F) -> F::Output;

    /// Runs `future` to completion, or gives up after `timeout`.
    fn timeout<F: std::future::Future>(future: F, timeout: Duration) -> Result<F::Output, Empty>;
}

/// `stomp-tokio`, on a multi-threaded runtime shared by the test binary.
#[derive(Debug)]
pub enum Tokio {}

/// `stomp-tokio`, on a current-thread runtime: one thread runs every task
/// (the client's included); test threads wait on it through its handle.
#[derive(Debug)]
pub enum TokioCurrentThread {}

fn tokio_handle(current_thread: bool) -> &'static tokio::runtime::Handle {
    static MULTI: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static SINGLE: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    if !current_thread {
        return MULTI
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
            })
            .handle();
    }
    SINGLE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("tokio-current-thread".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .unwrap();
        handle
    })
}

macro_rules! tokio_block_on {
    ($adapter:ty, $current_thread:literal) => {
        impl BlockOn for $adapter {
            fn block_on<F: std::future::Future>(future: F) -> F::Output {
                tokio_handle($current_thread).block_on(future)
            }

            fn timeout<F: std::future::Future>(
                future: F,
                timeout: Duration,
            ) -> Result<F::Output, Empty> {
                // The timer must be made inside the runtime.
                Self::block_on(async move { tokio::time::timeout(timeout, future).await })
                    .map_err(|_| Empty::Timeout)
            }
        }
    };
}

tokio_block_on!(Tokio, false);
tokio_block_on!(TokioCurrentThread, true);

/// `stomp-async-std` on async-std.
#[derive(Debug)]
pub enum AsyncStd {}

/// `stomp-async-std` on smol.
#[derive(Debug)]
pub enum Smol {}

impl BlockOn for AsyncStd {
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    fn timeout<F: std::future::Future>(future: F, timeout: Duration) -> Result<F::Output, Empty> {
        Self::block_on(async_std::future::timeout(timeout, future)).map_err(|_| Empty::Timeout)
    }
}

impl BlockOn for Smol {
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    fn timeout<F: std::future::Future>(future: F, timeout: Duration) -> Result<F::Output, Empty> {
        Self::block_on(smol::future::or(async { Ok(future.await) }, async {
            smol::Timer::after(timeout).await;
            Err(Empty::Timeout)
        }))
    }
}

/// An async client with the runtime that blocks on it.
pub struct AsyncClient<R> {
    client: stomp_driver::aio::Client,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R> AsyncClient<R> {
    /// The async client itself.
    pub fn inner(&self) -> &stomp_driver::aio::Client {
        &self.client
    }
}

impl<R> std::fmt::Debug for AsyncClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client.fmt(f)
    }
}

/// An async subscription, blocked on.
pub struct AsyncSub<R> {
    sub: stomp_driver::aio::Subscription,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

/// An async unhandled stream, blocked on.
pub struct AsyncUnhandled<R> {
    inner: stomp_driver::aio::Unhandled,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

/// An async tap, blocked on.
pub struct AsyncTap<R> {
    inner: stomp_driver::aio::Tap,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

/// An async message, blocked on.
pub struct AsyncMsg<R> {
    message: stomp_driver::aio::Message,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

/// An async transaction, blocked on.
pub struct AsyncTx<R> {
    tx: stomp_driver::aio::Transaction,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

macro_rules! tokio_adapter {
    ($adapter:ty, $name:literal) => {
        impl Adapter for $adapter {
            const NAME: &'static str = $name;
            type Client = AsyncClient<$adapter>;

            fn connect(config: Config) -> Result<Self::Client, Error> {
                let client = <$adapter>::block_on(stomp_tokio::Client::connect_with(config))?;
                Ok(AsyncClient {
                    client: (*client).clone(),
                    _runtime: std::marker::PhantomData,
                })
            }
        }
    };
}

tokio_adapter!(Tokio, "tokio");
tokio_adapter!(TokioCurrentThread, "tokio-current-thread");

macro_rules! futures_io_adapter {
    ($adapter:ty, $name:literal, $runtime:expr) => {
        impl Adapter for $adapter {
            const NAME: &'static str = $name;
            type Client = AsyncClient<$adapter>;

            fn connect(config: Config) -> Result<Self::Client, Error> {
                let connect = stomp_async_std::Client::connect_on(config, $runtime);
                let client = <$adapter>::block_on(connect)?;
                Ok(AsyncClient {
                    client: (*client).clone(),
                    _runtime: std::marker::PhantomData,
                })
            }
        }
    };
}

futures_io_adapter!(AsyncStd, "async-std", stomp_async_std::AsyncStd);
futures_io_adapter!(Smol, "smol", stomp_async_std::Smol);

impl<R: BlockOn + 'static> SuiteClient for AsyncClient<R> {
    type Sub = AsyncSub<R>;
    type Msg = AsyncMsg<R>;
    type Unhandled = AsyncUnhandled<R>;
    type Tap = AsyncTap<R>;
    type Tx<'a> = AsyncTx<R>;

    fn info(&self) -> SessionInfo {
        self.client.info().clone()
    }

    fn send_with(&self, destination: &str, body: Bytes, options: SendOptions) -> Result<(), Error> {
        R::block_on(self.client.send_with(destination, body, options))
    }

    fn subscribe_with(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Self::Sub, Error> {
        let sub = R::block_on(self.client.subscribe_with(destination, options))?;
        Ok(AsyncSub {
            sub,
            _runtime: std::marker::PhantomData,
        })
    }

    fn transaction(&self) -> Result<Self::Tx<'_>, Error> {
        let tx = R::block_on(self.client.transaction())?;
        Ok(AsyncTx {
            tx,
            _runtime: std::marker::PhantomData,
        })
    }

    fn stats(&self) -> Result<Stats, Error> {
        R::block_on(self.client.stats())
    }

    fn events(&self) -> Events {
        self.client.events()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn ack_id(&self, subscription: &str, id: &str, nack: bool) -> Result<(), Error> {
        match nack {
            true => R::block_on(self.client.nack_id(subscription, id)),
            false => R::block_on(self.client.ack_id(subscription, id)),
        }
    }

    fn transaction_with_id(&self, id: &str) -> Result<Self::Tx<'_>, Error> {
        let tx = R::block_on(self.client.transaction_with_id(id))?;
        Ok(AsyncTx {
            tx,
            _runtime: std::marker::PhantomData,
        })
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.client.close_reason()
    }

    fn acknowledge_in(
        &self,
        message: &Self::Msg,
        tx: &Self::Tx<'_>,
        nack: bool,
    ) -> Result<(), Error> {
        match nack {
            true => R::block_on(message.message.nack_in(&tx.tx)),
            false => R::block_on(message.message.ack_in(&tx.tx)),
        }
    }

    fn request(
        &self,
        destination: &str,
        body: Bytes,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Self::Msg, Error> {
        let message = R::block_on(
            self.client
                .request_with(destination, body, options, timeout),
        )?;
        Ok(AsyncMsg {
            message,
            _runtime: std::marker::PhantomData,
        })
    }

    fn reply(&self, request: &Self::Msg, body: Bytes) -> Result<(), Error> {
        R::block_on(self.client.reply(&request.message, body))
    }

    fn health(&self) -> Result<stomp_driver::driver::Health, Error> {
        R::block_on(self.client.health())
    }

    fn tap(&self) -> Self::Tap {
        AsyncTap {
            inner: self.client.tap(),
            _runtime: std::marker::PhantomData,
        }
    }

    fn unhandled(&self) -> Self::Unhandled {
        AsyncUnhandled {
            inner: self.client.unhandled(),
            _runtime: std::marker::PhantomData,
        }
    }

    fn disconnect(self) -> Result<(), Error> {
        R::block_on(self.client.disconnect())
    }
}

impl<R: BlockOn + 'static> SuiteTap for AsyncTap<R> {
    fn recv_timeout(&self, timeout: Duration) -> Result<Tapped, Empty> {
        R::timeout(self.inner.recv(), timeout)?.ok_or(Empty::Closed)
    }
}

impl<R: BlockOn + 'static> SuiteInbox for AsyncUnhandled<R> {
    type Msg = AsyncMsg<R>;

    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty> {
        let message = R::timeout(self.inner.recv(), timeout)?.ok_or(Empty::Closed)?;
        Ok(AsyncMsg {
            message,
            _runtime: std::marker::PhantomData,
        })
    }
}

impl<R: BlockOn + 'static> SuiteSub for AsyncSub<R> {
    type Msg = AsyncMsg<R>;

    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty> {
        let message = R::timeout(self.sub.recv(), timeout)?.ok_or(Empty::Closed)?;
        Ok(AsyncMsg {
            message,
            _runtime: std::marker::PhantomData,
        })
    }

    fn unsubscribe(self) -> Result<(), Error> {
        R::block_on(self.sub.unsubscribe())
    }

    fn unsubscribe_with_receipt(self) -> Result<(), Error> {
        R::block_on(self.sub.unsubscribe_with_receipt())
    }
}

impl<R: BlockOn + 'static> SuiteMsg for AsyncMsg<R> {
    fn body(&self) -> &Bytes {
        self.message.body()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.message.header(name)
    }

    fn ack(&self) -> Result<(), Error> {
        R::block_on(self.message.ack())
    }

    fn nack(&self) -> Result<(), Error> {
        R::block_on(self.message.nack())
    }

    fn decoded_text(&self) -> Option<String> {
        self.message.text().map(String::from)
    }

    fn ack_with_receipt(&self, nack: bool) -> Result<(), Error> {
        match nack {
            true => R::block_on(self.message.nack_with_receipt()),
            false => R::block_on(self.message.ack_with_receipt()),
        }
    }

    fn ack_handle_id(&self) -> Option<String> {
        self.message.ack_handle().map(|h| h.id().to_string())
    }
}

impl<R: BlockOn + 'static> SuiteTx for AsyncTx<R> {
    fn send(&self, destination: &str, body: &str) -> Result<(), Error> {
        R::block_on(self.tx.send(destination, body.to_string()))
    }

    fn commit(self) -> Result<(), Error> {
        R::block_on(self.tx.commit())
    }

    fn abort(self) -> Result<(), Error> {
        R::block_on(self.tx.abort())
    }
}
