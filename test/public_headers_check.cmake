# public_headers_check.cmake: fails when a public header (include/egcam/*.h) names a CUDA
# type, qualifier or header in its code (comments may talk about CUDA). Run as
#   cmake -DHEADER_DIR=<repo>/include/egcam -P public_headers_check.cmake
if(NOT HEADER_DIR)
  message(FATAL_ERROR "set HEADER_DIR to the folder of the public headers")
endif()
file(GLOB headers "${HEADER_DIR}/*.h")
list(LENGTH headers n)
if(n EQUAL 0)
  message(FATAL_ERROR "no headers in ${HEADER_DIR}")
endif()
set(bad 0)
foreach(h ${headers})
  file(READ "${h}" text)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" code "${text}")
  string(REGEX REPLACE "//[^\n]*" "" code "${code}")
  string(REGEX MATCHALL
    "(cuda|cudnn|cublas|cufft|curand|nvrtc)[A-Za-z0-9_.]*|CU[a-z][A-Za-z0-9_]*|__(device|host|global|shared|half|nv_bfloat16)[A-Za-z0-9_]*"
    hits "${code}")
  if(hits)
    list(REMOVE_DUPLICATES hits)
    message(SEND_ERROR "${h}: exposes CUDA names: ${hits}")
    set(bad 1)
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "public headers must not expose CUDA types")
endif()
message(STATUS "${n} public headers, none names a CUDA type")
