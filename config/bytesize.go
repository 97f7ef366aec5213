package config

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// ByteSize is a size in bytes. In chat.yaml it is a plain number of bytes
// or a number with a unit: 512KiB, 1MiB, 2MB (go-humanize's ParseBytes).
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler for the config decoder.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := humanize.ParseBytes(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a size such as 1MiB or 1048576", text)
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("%q is larger than 2 GiB", text)
	}
	*b = ByteSize(n)
	return nil
}

// Int is the size as an int.
func (b ByteSize) Int() int { return int(b) }
