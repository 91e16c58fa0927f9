package framework

import (
	"fmt"
	"strconv"
	"time"

	"github.com/stackgate/stackgate/devstack"
)

// ParseIntervals reads Gomega-style intervals as the e2e configuration
// gives them to Eventually ([timeout, polling], each "20m", a
// time.Duration, or a number of seconds) into the bounds of a wait. No
// intervals is an error; without a polling interval, Polling is zero (see
// devstack.Intervals). Every wait of this package takes its intervals
// through it.
func ParseIntervals(intervals ...interface{}) (devstack.Intervals, error) {
	if len(intervals) == 0 {
		return devstack.Intervals{}, fmt.Errorf("no intervals given: pass e2eConfig.GetIntervals(spec, \"wait-...\") and define the key in the e2e configuration")
	}
	if len(intervals) > 2 {
		return devstack.Intervals{}, fmt.Errorf("%d intervals given: pass [timeout, polling], as e2eConfig.GetIntervals returns them", len(intervals))
	}
	var iv devstack.Intervals
	var err error
	if iv.Timeout, err = duration(intervals[0]); err != nil {
		return devstack.Intervals{}, fmt.Errorf("timeout: %w", err)
	}
	if len(intervals) == 2 {
		if iv.Polling, err = duration(intervals[1]); err != nil {
			return devstack.Intervals{}, fmt.Errorf("polling: %w", err)
		}
	}
	if iv.Timeout <= 0 || iv.Polling < 0 {
		return devstack.Intervals{}, fmt.Errorf("intervals %v: the timeout must be positive and the polling not negative", intervals)
	}
	return iv, nil
}

// IntervalTimeout returns the timeout of intervals (see ParseIntervals).
func IntervalTimeout(intervals ...interface{}) (time.Duration, error) {
	iv, err := ParseIntervals(intervals...)
	return iv.Timeout, err
}

// IntervalPolling returns the polling interval of intervals (see
// ParseIntervals), or def when none is given.
func IntervalPolling(def time.Duration, intervals ...interface{}) (time.Duration, error) {
	if len(intervals) < 2 {
		return def, nil
	}
	iv, err := ParseIntervals(intervals...)
	return iv.Polling, err
}

func duration(v interface{}) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		if d, err := time.ParseDuration(x); err == nil {
			return d, nil
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		return 0, fmt.Errorf("interval %q is not a duration such as \"10m\" or \"30s\"", x)
	case int:
		return time.Duration(x) * time.Second, nil
	case int64:
		return time.Duration(x) * time.Second, nil
	case float64:
		return time.Duration(x * float64(time.Second)), nil
	default:
		return 0, fmt.Errorf("interval %v of type %T is not a duration; use a string such as \"10m\"", v, v)
	}
}
