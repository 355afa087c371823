//! Turns a finished run into plots, HTML pages and comparisons; it renders verdicts, never re-checks.
