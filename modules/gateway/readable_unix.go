//go:build unix

package gateway

import "syscall"

// readable reports whether a read of fd would not block: a byte is there
// (peeked, not taken), the peer closed, or the socket failed. It is a
// syscall.RawConn.Read callback: false makes the caller wait in the
// runtime's poller until fd is readable, then ask again.
func readable(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n > 0 || err != syscall.EAGAIN
}
