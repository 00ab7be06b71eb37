# CMake package file of ch3d_embed (installed by native/Makefile as BUILD/lib/cmake/ch3d_embed/):
#   find_package(ch3d_embed REQUIRED PATHS <BUILD>/lib/cmake)   # or CMAKE_PREFIX_PATH=<BUILD>
#   target_link_libraries(my_app PRIVATE ch3d::embed)
get_filename_component(_ch3d_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET ch3d::embed)
  add_library(ch3d::embed SHARED IMPORTED)
  set_target_properties(ch3d::embed PROPERTIES
    IMPORTED_LOCATION "${_ch3d_prefix}/lib/libch3d_embed.so"
    IMPORTED_NO_SONAME FALSE
    INTERFACE_INCLUDE_DIRECTORIES "${_ch3d_prefix}/include")
endif()
set(ch3d_embed_FOUND TRUE)
unset(_ch3d_prefix)
