/// @file gilmour/error.hpp
/// The exception tree of gilmour-cpp.
///
/// Exceptions are for misuse of the API and for a backend that cannot be
/// reached at start(); they are thrown before anything is sent. Remote
/// outcomes (a handler failed, a request timed out, nobody listens) are never
/// exceptions: they arrive as a Message with a status code (see message.hpp).
///
/// Every exception derives from gilmour::Error, itself a std::runtime_error.
///
/// Thread safety: exception objects are immutable values.
#pragma once

#include <stdexcept>
#include <string>

#include "gilmour/export.hpp"

namespace gilmour {

/// Root of every exception thrown by gilmour-cpp.
class GILMOUR_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A bad argument: an empty topic, `*` in a reply topic, a negative timeout,
/// a duplicate reply handler for one topic and group, an unknown error policy
/// name, a malformed Redis URL.
class GILMOUR_API InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// The call is not allowed in the engine's current state: a request before
/// start(), start() twice, a blocking call on the engine's I/O thread.
class GILMOUR_API InvalidState : public Error {
 public:
  using Error::Error;
};

/// The backend could not be reached (or refused us: wrong password, bad
/// database) within the connect timeout at start().
class GILMOUR_API ConnectionError : public Error {
 public:
  using Error::Error;
};

}  // namespace gilmour
