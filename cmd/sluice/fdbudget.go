package main

import (
	"log/slog"
	"syscall"

	"github.com/sluicemq/sluice/broker/store"
)

// The budget of open consume-queue logs (brokernode.Config.MaxOpenQueueFiles) when neither
// --max-open-queue-files nor maxOpenQueueFiles sets it: what the process's descriptor limit
// (RLIMIT_NOFILE, soft) leaves after a reserve for connections, the commit log, the key
// index, metadata writes and segment rolls, at fdsPerQueueLog descriptors per log, capped at
// store.DefaultMaxOpenQueueFiles and never below minQueueFiles.
const (
	fdsPerQueueLog  = 2   // the wal's tail segment, and the descriptor Sync fsyncs through
	minFdReserve    = 256 // descriptors kept for everything else, at least
	fdReserveFactor = 4   // ... or a quarter of the limit, if more
	minQueueFiles   = 16
)

// queueFileBudget derives the budget from the process's descriptor limit and logs it.
func queueFileBudget(logger *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("cannot read the descriptor limit; using the default budget of open consume-queue logs",
			"maxOpenQueueFiles", store.DefaultMaxOpenQueueFiles, "err", err)
		return store.DefaultMaxOpenQueueFiles
	}
	n := budgetForLimit(lim.Cur)
	logger.Info("open consume-queue logs budget derived from the descriptor limit", "nofile", lim.Cur, "maxOpenQueueFiles", n)
	return n
}

// budgetForLimit is the budget for a soft descriptor limit of nofile.
func budgetForLimit(nofile uint64) int {
	reserve := max(minFdReserve, nofile/fdReserveFactor)
	if nofile <= reserve {
		return minQueueFiles
	}
	return int(min(max((nofile-reserve)/fdsPerQueueLog, minQueueFiles), store.DefaultMaxOpenQueueFiles))
}
