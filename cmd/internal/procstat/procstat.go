// Package procstat reads CPU time from /proc for the load tools: one
// process's (user + system) and the whole machine's (every state but idle
// and iowait), so that they report CPU per operation for the server under
// load and for everything running.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// hz is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const hz = 100

// ProcessCPU is a process's user+system CPU time.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, clock ticks
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime
	return time.Duration(ut+st) * time.Second / hz, nil
}

// MachineCPU is the CPU time every process of the machine has used, read
// from stat (/proc/stat).
func MachineCPU(stat string) (time.Duration, error) {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0, err
	}
	return ParseMachineCPU(string(b))
}

// ParseMachineCPU reads the busy time of /proc/stat's cpu line.
func ParseMachineCPU(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / hz, nil
}
