package osssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
)

// A continuation token is
//
//	"v1:" + base64.StdEncoding(magic | mac | len | lastJobId | zero pad) + "?#"
//
// magic (0xFB 0xFF 0xBF) always encodes as "+/+/", and the pad makes the
// payload length 1 mod 3 so the encoding always ends in "==": every token
// holds each of '+', '/', '=', ':', '?' and '#', the characters OSS allows
// and a client that does not URL-encode mangles. mac is an HMAC over the
// status filter and lastJobId, so a forged token, or one replayed with a
// different filter, is refused. The cursor is keyset-based: the next page
// starts after lastJobId, wherever it now sits in the world.
const (
	tokenPrefix = "v1:"
	tokenSuffix = "?#"
	tokenMaxLen = 1024
	macLen      = 8
)

var tokenMagic = [3]byte{0xFB, 0xFF, 0xBF}

func tokenKey(seed int64, region string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "osssim continuation token\x00%d\x00%s", seed, region)
	return h.Sum(nil)
}

func (s *Simulator) tokenMAC(filter, lastID string) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(filter))
	m.Write([]byte{0})
	m.Write([]byte(lastID))
	return m.Sum(nil)[:macLen]
}

// encodeToken returns the token for the page after lastID under filter (the
// canonical form of batchJobStatuses).
func (s *Simulator) encodeToken(filter, lastID string) string {
	payload := make([]byte, 0, len(tokenMagic)+macLen+2+len(lastID)+2)
	payload = append(payload, tokenMagic[:]...)
	payload = append(payload, s.tokenMAC(filter, lastID)...)
	payload = binary.BigEndian.AppendUint16(payload, uint16(len(lastID)))
	payload = append(payload, lastID...)
	for len(payload)%3 != 1 {
		payload = append(payload, 0)
	}
	return tokenPrefix + base64.StdEncoding.EncodeToString(payload) + tokenSuffix
}

// decodeToken returns the JobId a token resumes after, or a reason it is
// invalid. The reason never quotes the token's MAC.
func (s *Simulator) decodeToken(filter, tok string) (string, error) {
	if len(tok) < 1 || len(tok) > tokenMaxLen {
		return "", fmt.Errorf("must be 1 to %d characters long, got %d", tokenMaxLen, len(tok))
	}
	body, ok := strings.CutPrefix(tok, tokenPrefix)
	if ok {
		body, ok = strings.CutSuffix(body, tokenSuffix)
	}
	if !ok {
		return "", fmt.Errorf("was not issued by this endpoint (was it URL-encoded?)")
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(body)
	head := len(tokenMagic) + macLen + 2
	if err != nil || len(payload) < head || [3]byte(payload[:3]) != tokenMagic {
		return "", fmt.Errorf("is malformed (was it URL-encoded?)")
	}
	n := int(binary.BigEndian.Uint16(payload[head-2 : head]))
	if head+n > len(payload) || len(payload)-head-n > 2 || strings.Trim(string(payload[head+n:]), "\x00") != "" {
		return "", fmt.Errorf("is malformed")
	}
	lastID := string(payload[head : head+n])
	if !hmac.Equal(payload[3:3+macLen], s.tokenMAC(filter, lastID)) {
		return "", fmt.Errorf("is invalid or was issued for a different batchJobStatuses filter")
	}
	return lastID, nil
}
