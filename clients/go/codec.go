package tarn

import "fmt"

// requestDecoders and replyDecoders are the per-opcode payload decoders. Adding an opcode
// means: a request type and a reply type (each with Opcode and encode), their two decoders
// registered here, and one Client method calling c.do.
var requestDecoders = map[Opcode]func(*decoder) Request{
	OpcodeHello: decodeHello, OpcodePing: decodePing, OpcodeSQL: decodeSQL, OpcodeUpsert: decodeUpsert,
	OpcodeGet: decodeGet, OpcodeDelete: decodeDelete, OpcodeStats: decodeStats, OpcodeIngest: decodeIngest,
	OpcodeFeatures: decodeFeatures, OpcodeHistory: decodeHistory, OpcodeKnn: decodeKnn,
	OpcodeContext: decodeContext, OpcodeRecent: decodeRecent,
}

var replyDecoders = map[Opcode]func(*decoder) Response{
	OpcodeHello: decodeHelloReply, OpcodePing: decodePong, OpcodeSQL: decodeSQLReply,
	OpcodeUpsert: decodeUpsertReply, OpcodeGet: decodeGetReply, OpcodeDelete: decodeDeleteReply,
	OpcodeStats: decodeStatsReply, OpcodeIngest: decodeIngestReply, OpcodeFeatures: decodeFeaturesReply,
	OpcodeHistory: decodeHistoryReply, OpcodeKnn: decodeKnnReply, OpcodeContext: decodeContextReply,
	OpcodeRecent: decodeRecentReply, OpcodeError: decodeError,
}

// AppendRequest appends a whole request frame (header + payload) to dst.
func AppendRequest(dst []byte, requestID uint64, req Request) []byte {
	return appendFrame(dst, requestID, req.Opcode(), 0, req.encode)
}

// AppendResponse appends a whole response frame (RESPONSE flag set) to dst: the server side
// of the codec, used by the test vectors (and by tools that need it).
func AppendResponse(dst []byte, requestID uint64, resp Response) []byte {
	return appendFrame(dst, requestID, resp.Opcode(), FlagResponse, resp.encode)
}

func appendFrame(dst []byte, id uint64, op Opcode, flags uint16, body func(*encoder)) []byte {
	start := len(dst)
	e := encoder{buf: append(dst, make([]byte, HeaderLen)...)}
	body(&e)
	Header{uint32(len(e.buf) - start - HeaderLen), op, flags, id}.put(e.buf[start:])
	return e.buf
}

// DecodeResponse decodes a response frame's payload (the RESPONSE flag is required). An
// ERROR frame decodes to a *ServerError (as a Response, not as the error).
func DecodeResponse(h Header, payload []byte) (Response, error) {
	if err := checkFrame(h, payload, true); err != nil {
		return nil, err
	}
	dec, ok := replyDecoders[h.Opcode]
	if !ok {
		return nil, &DecodeError{CodeUnknownOpcode,
			fmt.Sprintf("unknown response opcode %#06x", uint16(h.Opcode))}
	}
	d := newDecoder(payload, h.Opcode.String())
	resp := dec(d)
	if err := d.finish(); err != nil {
		return nil, err
	}
	return resp, nil
}

// DecodeRequest decodes a request frame's payload: the server side of the codec, used by the
// test vectors. Errors carry the code a server answers.
func DecodeRequest(h Header, payload []byte) (Request, error) {
	if err := checkFrame(h, payload, false); err != nil {
		return nil, err
	}
	dec, ok := requestDecoders[h.Opcode]
	if !ok {
		return nil, &DecodeError{CodeUnknownOpcode,
			fmt.Sprintf("unknown request opcode %#06x", uint16(h.Opcode))}
	}
	d := newDecoder(payload, h.Opcode.String())
	req := dec(d)
	if err := d.finish(); err != nil {
		return nil, err
	}
	return req, nil
}

func checkFrame(h Header, payload []byte, response bool) error {
	if uint64(len(payload)) != uint64(h.PayloadLen) {
		return &DecodeError{CodeMalformed, fmt.Sprintf(
			"header announces %d payload bytes but %d were given", h.PayloadLen, len(payload))}
	}
	if h.Flags&^FlagResponse != 0 {
		return &DecodeError{CodeMalformed,
			fmt.Sprintf("reserved flag bits set: flags %#06x", h.Flags)}
	}
	if isResp := h.Flags&FlagResponse != 0; isResp != response {
		msg := "RESPONSE flag set on a client frame"
		if response {
			msg = "RESPONSE flag missing on a server frame"
		}
		return &DecodeError{CodeMalformed, msg}
	}
	return nil
}
