//! Slack logic free of HTTP types: request signature verification and payload parsing.
