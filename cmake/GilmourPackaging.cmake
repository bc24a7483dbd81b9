# CPack: `cpack -G DEB` in the build tree makes the Debian packages
#   libgilmour0.1    the shared library (runtime component; shared builds only)
#   libgilmour-dev   headers, CMake config, gilmour.pc, the .so link or the .a
#   gilmour-tools    gilmour-health-bulletin and the other tools/ programs
# Dependencies on other packages come from dpkg-shlibdeps for binaries and
# from the lists below for the development files. See docs/packaging.md.
set(CPACK_PACKAGE_NAME gilmour)
set(CPACK_PACKAGE_VENDOR "gilmour-cpp")
set(CPACK_PACKAGE_CONTACT "gilmour-cpp maintainers <gilmour-cpp@localhost>")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would prepend it to every
# package; each component's description starts with its own summary line.
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_INSTALL_DIRECTORY gilmour)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)

set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps must find libgilmour.so.X.Y of this build for gilmour-tools.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})
# Component dependencies (tools -> runtime, dev -> runtime) become Depends.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(GILMOUR_DEB_RUNTIME libgilmour${GILMOUR_SOVERSION})

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${GILMOUR_DEB_RUNTIME})
# DEBIAN/shlibs for the package holding libgilmour.so.X.Y (no ABI promise
# within 0.x beyond the exact version: "=").
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "Gilmour messaging for C++17 (shared library)\nThe gilmour-cpp library: Gilmour's signal/slot, request/reply, exclusion\ngroups, error policies, health checks and composition over Redis (hiredis\non libuv) or an in-process bus. No ABI stability before 1.0: the soname\ncarries MAJOR.MINOR.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libgilmour-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(_dev_depends "nlohmann-json3-dev (>= 3.10), libspdlog-dev (>= 1:1.9)")
if(NOT GILMOUR_SHARED)
  # libgilmour.a: the consumer links hiredis and libuv itself.
  string(APPEND _dev_depends ", libhiredis-dev (>= 0.14), libuv1-dev (>= 1.40), pkg-config")
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_dev_depends}")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "Gilmour messaging for C++17 (development files)\nHeaders, CMake package (find_package(gilmour)) and pkg-config file\n(gilmour.pc) of the gilmour-cpp library.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME gilmour-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "Gilmour messaging for C++17 (tools)\ngilmour-health-bulletin and the other command-line tools of gilmour-cpp.")

if(GILMOUR_SHARED)
  set(CPACK_COMPONENTS_ALL runtime dev tools)
  set(CPACK_COMPONENT_DEV_DEPENDS runtime)
  set(CPACK_COMPONENT_TOOLS_DEPENDS runtime)
else()
  set(CPACK_COMPONENTS_ALL dev tools)
endif()
if(NOT GILMOUR_BUILD_TOOLS)
  list(REMOVE_ITEM CPACK_COMPONENTS_ALL tools)
endif()

include(CPack)
