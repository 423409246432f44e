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

/// What a peer's request stream carried: a message, or a frame this node refuses.
///
/// A refused frame (over the size limit, or not a `NetMessage`) is not an I/O error: the
/// request-response layer drops a failed `read_request` with a debug log and no event, so the
/// node could neither count nor disconnect the peer that sent it. As a value it reaches the
/// behaviour with the peer's id, and `p2p` disconnects the sender. Nothing past an oversized
/// length prefix is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Message(NetMessage),
    Refused(String),
}

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
        return Err(io::Error::new(io::ErrorKind::InvalidData, oversized(len, max)));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

fn oversized(len: usize, max: usize) -> String {
    format!("frame of {len} bytes exceeds the maximum of {max}")
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
    type Request = Frame;
    type Response = NetResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max_frame_bytes {
            return Ok(Frame::Refused(oversized(len, self.max_frame_bytes)));
        }
        let mut buf = vec![0u8; len];
        io.read_exact(&mut buf).await?;
        Ok(match NetMessage::decode(buf.as_slice()) {
            Ok(msg) => Frame::Message(msg),
            Err(e) => Frame::Refused(format!("undecodable message: {e}")),
        })
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
        req: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Frame::Message(msg) => {
                write_frame(io, &msg.encode_to_vec(), self.max_frame_bytes).await
            }
            Frame::Refused(_) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "a refused frame is never sent"))
            }
        }
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
        block_on(c.write_request(&PROTOCOL, &mut buf, Frame::Message(msg.clone()))).unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        assert_eq!(block_on(c.read_request(&PROTOCOL, &mut rd)).unwrap(), Frame::Message(msg));

        // A length prefix over the limit is refused before allocation, as a value that reaches
        // the behaviour with the peer's id (an I/O error would vanish inside libp2p).
        let mut big = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let refused = block_on(c.read_request(&PROTOCOL, &mut big)).unwrap();
        assert!(matches!(refused, Frame::Refused(why) if why.contains("exceeds")));
        // One byte over the limit too (nothing after the prefix is read).
        let mut over = Cursor::new(1025u32.to_be_bytes().to_vec());
        assert!(matches!(
            block_on(c.read_request(&PROTOCOL, &mut over)).unwrap(),
            Frame::Refused(_)
        ));
        // Garbage inside a valid frame is refused, not a panic.
        let mut garbage = 4u32.to_be_bytes().to_vec();
        garbage.extend([0xff, 0xff, 0xff, 0xff]);
        let r = block_on(c.read_request(&PROTOCOL, &mut Cursor::new(garbage))).unwrap();
        assert!(matches!(r, Frame::Refused(why) if why.contains("undecodable")));
        // A stream that ends early is an I/O error (nothing to blame on the content).
        assert!(block_on(c.read_request(&PROTOCOL, &mut Cursor::new(vec![0, 0]))).is_err());
        // Sending an oversized frame is refused too, and a refused frame is never sent.
        let huge = NetMessage { kind: Some(Kind::Txs(TxBatch { txs: vec![vec![0; 2048]] })) };
        let sink = || Cursor::new(Vec::new());
        assert!(block_on(c.write_request(&PROTOCOL, &mut sink(), Frame::Message(huge))).is_err());
        let no = Frame::Refused("x".into());
        assert!(block_on(c.write_request(&PROTOCOL, &mut sink(), no)).is_err());
    }
}
