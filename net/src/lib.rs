//! Tarn wire protocol v1: frames, messages, codec and limits. No I/O.
//!
//! Invariant: only this crate knows the wire format. The server and the clients call
//! [`encode_request`]/[`decode_request`]/[`encode_response`]/[`decode_response`] on byte slices
//! and split their read buffers with [`split_frame`], [`split_frames`] or [`FrameBuffer`].
//! The byte-level specification is `docs/PROTOCOL.md`; `docs/protocol-vectors.json` holds test
//! vectors checked by this crate's tests.

mod codec;
mod encode;
mod error;
mod frame;
pub mod limits;
mod message;

pub use codec::{
    decode_request, decode_response, encode_column_type, encode_get_reply, encode_request,
    encode_request_payload, encode_response, encode_response_payload, encode_value,
    negotiate_version, NO_ROW, VALUE_TAG_NULL,
};
pub use error::{DecodeError, ErrorCode};
pub use frame::{
    needed_bytes, peek_header, split_frame, split_frames, Frame, FrameBuffer, FrameHeader, Opcode,
    SplitFrames, CONNECTION_REQUEST_ID, FLAG_RESPONSE, HEADER_LEN, KNOWN_FLAGS,
};
pub use message::{
    Column, ContextCall, ContextGroup, ContextItemReply, ContextReply, ContextRequest, DeleteReply,
    ErrorReply, FeatureRow, FeaturesReply, FeaturesRequest, GetReply, Hello, HelloReply,
    HistoryReply, HistoryRequest, IndexStats, IngestBody, IngestReply, IngestRequest, KeysRequest,
    KnnQuery, KnnReply, KnnRequest, KnnRow, OpStats, Producer, RecentReply, RecentRequest, Request,
    Response, ShardAsOf, ShardStats, SqlReply, StatsReply, UpsertMode, UpsertReply, UpsertRequest,
};
pub use tarn_types::{ColumnType, Value};
