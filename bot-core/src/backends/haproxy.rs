//! [`HaproxySwitch`]: blue/green over HAProxy's runtime API (TCP or unix socket).
