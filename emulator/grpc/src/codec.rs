//! The protobuf codec of every RPC: prost's, with a small initial buffer.
//!
//! tonic allocates its codec buffer up front for every call, on each side and each direction
//! (8 KiB by default). The worker side is a flood of tiny unary calls (an activity completion
//! is about a hundred bytes, its answer empty), so that allocation, and the allocator work of
//! freeing it, cost more than the message. A small initial buffer still grows to any size (a
//! long history grows it like any `BytesMut`), so nothing changes on the wire. The streaming
//! yield threshold (how many ready work items are batched into one send) keeps tonic's default.
//!
//! Knows nothing of the service: generated code creates it by name (`build.rs`).

use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, ProstCodec};

/// Bytes allocated up front per call and direction; larger messages grow the buffer.
const INITIAL_BUFFER: usize = 512;
/// tonic's default: ready stream items are batched into one send up to this many bytes.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost's codec with a small initial buffer (see the module doc).
#[derive(Debug)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = <ProstCodec<T, U> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
