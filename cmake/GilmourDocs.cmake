# The API reference: `cmake --build <dir> --target docs` runs Doxygen over the
# public headers into <dir>/docs/html. Undocumented public entities and any
# other Doxygen warning fail the target (WARN_AS_ERROR).
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(GILMOUR_DOXYGEN_INPUT
      "${PROJECT_SOURCE_DIR}/include/gilmour ${PROJECT_BINARY_DIR}/include/gilmour")
  set(GILMOUR_DOXYGEN_OUTPUT ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(docs
    COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: API reference in ${GILMOUR_DOXYGEN_OUTPUT}/html"
    VERBATIM)
else()
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo "docs: doxygen not found (apt-get install doxygen)"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
