# cmake -DDIR=<path> [-DSUBDIRS=a,b] -P fresh-dir.cmake
# Recreate DIR empty (plus the comma-separated SUBDIRS inside it).  Used as a
# ctest fixture so example programs that create disks (which must fail on an
# existing file) always start from scratch.
if(NOT DEFINED DIR OR DIR STREQUAL "")
  message(FATAL_ERROR "fresh-dir.cmake: DIR not set")
endif()
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
if(DEFINED SUBDIRS AND NOT SUBDIRS STREQUAL "")
  string(REPLACE "," ";" _subdirs "${SUBDIRS}")
  foreach(sub IN LISTS _subdirs)
    file(MAKE_DIRECTORY "${DIR}/${sub}")
  endforeach()
endif()
