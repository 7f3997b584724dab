# Sanitizer and fuzzing builds (README "Fuzzing and sanitizers").
#
#   -DENROLSYNC_SANITIZE=ON  the normal tree (gcc or clang) with ASan + UBSan,
#                            any finding fatal: scripts/sanitize.sh runs the
#                            unit tests in it (build-asan).
#   -DENROLSYNC_FUZZ=ON      clang only: the same sanitizers plus libFuzzer's
#                            coverage instrumentation on every target, and the
#                            libFuzzer targets in fuzz/ (scripts/fuzz.sh,
#                            build-fuzz).
option(ENROLSYNC_SANITIZE "Build everything with -fsanitize=address,undefined" OFF)
option(ENROLSYNC_FUZZ "Build the libFuzzer targets in fuzz/ (clang; implies the sanitizers)" OFF)

set(ENROLSYNC_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
# GCC leaves float-to-integer overflow out of "undefined"; clang has it in.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND ENROLSYNC_SANITIZER_FLAGS -fsanitize=float-cast-overflow)
endif()

if(ENROLSYNC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ENROLSYNC_FUZZ=ON needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage feedback from every library the targets call; the targets
  # themselves link with -fsanitize=fuzzer (fuzz/CMakeLists.txt).
  add_compile_options(${ENROLSYNC_SANITIZER_FLAGS} -fsanitize=fuzzer-no-link)
  add_link_options(${ENROLSYNC_SANITIZER_FLAGS})
elseif(ENROLSYNC_SANITIZE)
  add_compile_options(${ENROLSYNC_SANITIZER_FLAGS})
  add_link_options(${ENROLSYNC_SANITIZER_FLAGS})
endif()
