include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS gilmour EXPORT gilmourTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gilmour DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT gilmourTargets NAMESPACE gilmour::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gilmour)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/gilmourConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gilmourConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gilmour)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gilmourConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gilmourConfig.cmake ${PROJECT_BINARY_DIR}/gilmourConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gilmour)
