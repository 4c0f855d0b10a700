package controller

import (
	"context"
	"fmt"
	"log/slog"
)

// raftLogger sends the raft library's log lines to the node's slog logger, formatting them only
// when the level is enabled. Fatal panics instead of exiting the process: the runtime (or the
// simulator) reports it.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) print(level slog.Level, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, fmt.Sprint(v...))
	}
}

func (r raftLogger) printf(level slog.Level, format string, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) Debug(v ...any)                   { r.print(slog.LevelDebug, v...) }
func (r raftLogger) Debugf(format string, v ...any)   { r.printf(slog.LevelDebug, format, v...) }
func (r raftLogger) Info(v ...any)                    { r.print(slog.LevelInfo, v...) }
func (r raftLogger) Infof(format string, v ...any)    { r.printf(slog.LevelInfo, format, v...) }
func (r raftLogger) Warning(v ...any)                 { r.print(slog.LevelWarn, v...) }
func (r raftLogger) Warningf(format string, v ...any) { r.printf(slog.LevelWarn, format, v...) }
func (r raftLogger) Error(v ...any)                   { r.print(slog.LevelError, v...) }
func (r raftLogger) Errorf(format string, v ...any)   { r.printf(slog.LevelError, format, v...) }
func (r raftLogger) Fatal(v ...any)                   { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any)   { r.Panicf(format, v...) }

func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic("controller: raft: " + s)
}

func (r raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	r.l.Error(s)
	panic("controller: raft: " + s)
}
