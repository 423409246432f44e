//! Length-prefixed protobuf frames for the `/dpx/1` request-response protocol.
//!
//! A frame is a 4-byte big-endian length and that many bytes of protobuf. The length is checked
//! against the configured maximum *before* anything is allocated, so a peer cannot make us
//! buffer more than one maximal frame per stream.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use prost::Message;

use crate::wire::{NetMessage, NetResponse};

/// The protocol name; bump the version on any incompatible change.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/dpx/1");

/// The codec; `max_frame_bytes` bounds every frame in both directions.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    pub max_frame_bytes: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the maximum of {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    max: usize,
) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to send a {}-byte frame (maximum {max})", bytes.len()),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn invalid(e: prost::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = NetMessage;
    type Response = NetResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<NetMessage>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_frame(io, self.max_frame_bytes).await?;
        NetMessage::decode(buf.as_slice()).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<NetResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_frame(io, self.max_frame_bytes).await?;
        NetResponse::decode(buf.as_slice()).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: NetMessage,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.encode_to_vec(), self.max_frame_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: NetResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res.encode_to_vec(), self.max_frame_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TxBatch, net_message::Kind};
    use futures::io::Cursor;

    fn block_on<F: Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn frame_round_trip_and_limit() {
        let mut c = FrameCodec { max_frame_bytes: 1024 };
        let msg = NetMessage { kind: Some(Kind::Txs(TxBatch { txs: vec![vec![1, 2, 3]] })) };
        let mut buf = Cursor::new(Vec::new());
        block_on(c.write_request(&PROTOCOL, &mut buf, msg.clone())).unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        assert_eq!(block_on(c.read_request(&PROTOCOL, &mut rd)).unwrap(), msg);

        // A length prefix over the limit is refused before allocation.
        let mut big = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = block_on(c.read_request(&PROTOCOL, &mut big)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Garbage inside a valid frame is an error, not a panic.
        let mut garbage = 4u32.to_be_bytes().to_vec();
        garbage.extend([0xff, 0xff, 0xff, 0xff]);
        assert!(block_on(c.read_request(&PROTOCOL, &mut Cursor::new(garbage))).is_err());
        // Sending an oversized frame is refused too.
        let huge = NetMessage { kind: Some(Kind::Txs(TxBatch { txs: vec![vec![0; 2048]] })) };
        assert!(block_on(c.write_request(&PROTOCOL, &mut Cursor::new(Vec::new()), huge)).is_err());
    }
}
