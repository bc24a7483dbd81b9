#include "gilmour/version.hpp"

namespace gilmour {

std::string_view version() noexcept { return GILMOUR_VERSION; }

}  // namespace gilmour
