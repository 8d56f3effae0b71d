//! Mapping sizes and usage (npmap): /proc/PID/smaps and the categories of --summary.
