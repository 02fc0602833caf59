package startlink

import "encoding/hex"

func hexMAC(secret []byte, msg string) string { return hex.EncodeToString(mac(secret, msg)) }
