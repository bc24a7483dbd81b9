/// @file gilmour/gilmour.hpp
/// The umbrella header of gilmour-cpp: everything an application uses.
#pragma once

#include "gilmour/backend.hpp"
#include "gilmour/backends/inproc.hpp"
#include "gilmour/backends/redis.hpp"
#include "gilmour/composition.hpp"
#include "gilmour/engine.hpp"
#include "gilmour/error.hpp"
#include "gilmour/error_record.hpp"
#include "gilmour/executor.hpp"
#include "gilmour/health.hpp"
#include "gilmour/message.hpp"
#include "gilmour/options.hpp"
#include "gilmour/stats.hpp"
