# FindGMP
# -------
# Finds the GNU Multiple Precision library. Debian's libgmp-dev ships neither a CMake
# package configuration nor (in every release) a pkg-config file, so search directly.
#
# Result: target GMP::GMP, variables GMP_FOUND, GMP_INCLUDE_DIR, GMP_LIBRARY, GMP_VERSION.

find_path(GMP_INCLUDE_DIR NAMES gmp.h)
find_library(GMP_LIBRARY NAMES gmp)

if(GMP_INCLUDE_DIR AND EXISTS "${GMP_INCLUDE_DIR}/gmp.h")
  file(STRINGS "${GMP_INCLUDE_DIR}/gmp.h" _gmp_version_lines
       REGEX "^#define __GNU_MP_VERSION(_MINOR|_PATCHLEVEL)? +[0-9]+")
  foreach(_part IN ITEMS "" _MINOR _PATCHLEVEL)
    string(REGEX REPLACE ".*#define __GNU_MP_VERSION${_part} +([0-9]+).*" "\\1"
           _gmp_v${_part} "${_gmp_version_lines}")
  endforeach()
  set(GMP_VERSION "${_gmp_v}.${_gmp_v_MINOR}.${_gmp_v_PATCHLEVEL}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(GMP
  REQUIRED_VARS GMP_LIBRARY GMP_INCLUDE_DIR
  VERSION_VAR GMP_VERSION)

if(GMP_FOUND AND NOT TARGET GMP::GMP)
  add_library(GMP::GMP UNKNOWN IMPORTED)
  set_target_properties(GMP::GMP PROPERTIES
    IMPORTED_LOCATION "${GMP_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${GMP_INCLUDE_DIR}")
endif()

mark_as_advanced(GMP_INCLUDE_DIR GMP_LIBRARY)
