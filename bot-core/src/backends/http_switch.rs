//! [`HttpSwitch`] (a configured HTTP request + GET/JSON pointer read-back) and
//! [`JenkinsSwitch`] (a switch job + the same read-back).
