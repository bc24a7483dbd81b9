/// @file gilmour/gilmour.hpp
/// The umbrella header of gilmour-cpp: everything an application uses.
///
/// Thread safety and ownership are stated in each header's comment; in short:
/// Gilmour, Bus, ThreadPool and HealthBulletin are thread-safe; Message,
/// options, Stats and ErrorRecord are plain values; a Backend serves one
/// engine and is called only on that engine's I/O thread.
#pragma once

#include "gilmour/backend.hpp"
#include "gilmour/backends/inproc.hpp"
#include "gilmour/backends/redis.hpp"
#include "gilmour/composition.hpp"
#include "gilmour/engine.hpp"
#include "gilmour/error.hpp"
#include "gilmour/error_record.hpp"
#include "gilmour/executor.hpp"
#include "gilmour/export.hpp"
#include "gilmour/health.hpp"
#include "gilmour/message.hpp"
#include "gilmour/options.hpp"
#include "gilmour/stats.hpp"
#include "gilmour/version.hpp"
