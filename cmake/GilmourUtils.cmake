# Warnings and sanitizers, applied per target.
function(gilmour_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  endif()
endfunction()

function(gilmour_apply_sanitizers target)
  if(GILMOUR_SANITIZE)
    string(REPLACE ";" "," _san "${GILMOUR_SANITIZE}")
    target_compile_options(${target} PUBLIC -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${_san})
  endif()
endfunction()
