# Install rules. Components (the Debian packages of cmake/GilmourPackaging.cmake):
#   runtime  libgilmour.so.MAJOR.MINOR and the license     (libgilmour0.1)
#   dev      headers, libgilmour.so or .a, CMake config, gilmour.pc (libgilmour-dev)
#   tools    what tools/ installs (the default component there)  (gilmour-tools)
# A static build has no runtime component: the archive and license go to dev.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_target_property(_gilmour_type gilmour TYPE)
if(_gilmour_type STREQUAL "SHARED_LIBRARY")
  set(GILMOUR_LIB_COMPONENT runtime)
  set(GILMOUR_SHARED ON)
  set(GILMOUR_STATIC_BOOL OFF)
else()
  set(GILMOUR_LIB_COMPONENT dev)
  set(GILMOUR_SHARED OFF)
  set(GILMOUR_STATIC_BOOL ON)
endif()

install(TARGETS gilmour EXPORT gilmourTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${GILMOUR_LIB_COMPONENT}
    NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${GILMOUR_LIB_COMPONENT})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gilmour ${PROJECT_BINARY_DIR}/include/gilmour
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT ${GILMOUR_LIB_COMPONENT})

# CMake package: find_package(gilmour 0.1) -> gilmour::gilmour.
set(GILMOUR_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gilmour)
install(EXPORT gilmourTargets NAMESPACE gilmour:: DESTINATION ${GILMOUR_CMAKEDIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/gilmourConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gilmourConfig.cmake
  INSTALL_DESTINATION ${GILMOUR_CMAKEDIR})
# No ABI stability between 0.x minors: 0.1.y accepts a request for 0.1.x only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gilmourConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gilmourConfig.cmake ${PROJECT_BINARY_DIR}/gilmourConfigVersion.cmake
  DESTINATION ${GILMOUR_CMAKEDIR} COMPONENT dev)

# pkg-config: pkg-config --cflags --libs gilmour (add --static for a static build).
if(GILMOUR_SHARED)
  set(GILMOUR_PC_REQUIRES_PRIVATE "")
  set(GILMOUR_PC_CFLAGS "")
else()
  set(GILMOUR_PC_REQUIRES_PRIVATE "hiredis >= 0.14, libuv >= 1.40")
  set(GILMOUR_PC_CFLAGS " -DGILMOUR_STATIC")
endif()
# Relocatable: prefix is found from the .pc file's own place (cmake --install
# --prefix elsewhere works); absolute install dirs are used as they are.
# A /usr install (the Debian packages) names /usr itself.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(GILMOUR_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _rel "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" _rel "${_rel}")
  set(GILMOUR_PC_PREFIX "\${pcfiledir}/${_rel}")
endif()
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(GILMOUR_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(GILMOUR_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/gilmour.pc.in ${PROJECT_BINARY_DIR}/gilmour.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/gilmour.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
