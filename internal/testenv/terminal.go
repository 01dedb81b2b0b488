package testenv

import (
	"io/fs"
	"strings"
	"time"
)

// Terminal is a writer that says it is a character device, as a terminal
// does, so that what draws progress bars only on a terminal draws them on
// it; it keeps what was written.
type Terminal struct{ strings.Builder }

// Stat says Terminal is a character device.
func (*Terminal) Stat() (fs.FileInfo, error) { return charDevice{}, nil }

type charDevice struct{}

func (charDevice) Name() string       { return "tty" }
func (charDevice) Size() int64        { return 0 }
func (charDevice) Mode() fs.FileMode  { return fs.ModeDevice | fs.ModeCharDevice | 0o620 }
func (charDevice) ModTime() time.Time { return time.Time{} }
func (charDevice) IsDir() bool        { return false }
func (charDevice) Sys() any           { return nil }
