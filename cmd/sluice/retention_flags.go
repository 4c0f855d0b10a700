package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/brokernode"
)

// retentionFlags adds the flags for retention and the disk guard, named after RocketMQ's
// broker.conf keys fileReservedTime, deleteWhen, diskMaxUsedSpaceRatio and
// diskSpaceWarningLevelRatio.
func retentionFlags(fs *flag.FlagSet, cfg *brokernode.Config) {
	fs.DurationVar(&cfg.FileReservedTime, "file-reserved-time", cfg.FileReservedTime,
		"commit-log segments whose messages are all older than this are deleted at the delete-when hours (0: never by age)")
	fs.Func("delete-when", "hours (0-23, local time, ';'-separated) at which expired segments are deleted (default 04)", func(s string) error {
		hours, err := parseDeleteWhen(s)
		if err != nil {
			return err
		}
		cfg.DeleteWhen = hours
		return nil
	})
	fs.IntVar(&cfg.DiskMaxUsedSpaceRatio, "disk-max-used-space-ratio", cfg.DiskMaxUsedSpaceRatio,
		"percent of the data file system in use above which the oldest segments are deleted at once, expired or not (0: never)")
	fs.IntVar(&cfg.DiskFullRatio, "disk-full-ratio", cfg.DiskFullRatio,
		"percent of the data file system in use at or above which new messages are refused (0: never)")
}

// parseDeleteWhen parses RocketMQ's deleteWhen: hours separated by ';', e.g. "04" or "04;16".
func parseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, part := range strings.Split(s, ";") {
		h, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("delete-when %q: %q is not an hour 0-23", s, part)
		}
		hours = append(hours, h)
	}
	return hours, nil
}
