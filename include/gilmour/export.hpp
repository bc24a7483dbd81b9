/// @file gilmour/export.hpp
/// GILMOUR_API: marks the classes and functions the gilmour library exports.
///
/// The library is compiled with hidden visibility; only what its public
/// headers mark GILMOUR_API is part of the shared library's interface.
/// - Static library: the build system defines GILMOUR_STATIC for the library
///   and its users (CMake: an interface definition of gilmour::gilmour;
///   pkg-config: in Cflags), and GILMOUR_API expands to nothing.
/// - Shared library: GILMOUR_BUILDING is defined while the library itself is
///   compiled. On Windows GILMOUR_API is dllexport there and dllimport for
///   users; elsewhere it is default visibility.
///
/// Thread safety: not applicable (macros only).
#pragma once

#if defined(GILMOUR_STATIC)
#define GILMOUR_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(GILMOUR_BUILDING)
#define GILMOUR_API __declspec(dllexport)
#else
#define GILMOUR_API __declspec(dllimport)
#endif
#else
// The C++11 spelling: GCC rejects __attribute__ after [[nodiscard]] in a class head.
#define GILMOUR_API [[gnu::visibility("default")]]
#endif
