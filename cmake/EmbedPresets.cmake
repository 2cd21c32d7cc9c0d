# Compiles a folder of preset JSON files into the binary, so `foldplan` finds its presets wherever
# it is installed. Generates <out>.cpp defining `std::span<const EmbeddedFile> <function>()`.
function(foldplan_embed_presets target function_name preset_dir)
  file(GLOB preset_files CONFIGURE_DEPENDS "${preset_dir}/*.json")
  list(SORT preset_files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${function_name}.cpp")
  set(script "${PROJECT_SOURCE_DIR}/cmake/WriteEmbeddedPresets.cmake")
  # A CMake list would be split by the shell at ';': pass it with '|' between the paths.
  string(REPLACE ";" "|" preset_file_arg "${preset_files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DFUNCTION=${function_name}
            "-DFILES=${preset_file_arg}" -P ${script}
    DEPENDS ${preset_files} ${script}
    COMMENT "Embedding presets for ${function_name}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
  # A shipped calibration (531 GEMM shapes, twice) is one raw string literal longer than the 65,536
  # characters the standard asks compilers to support; GCC and Clang take far longer ones, and
  # clang's -Wpedantic would otherwise stop the -Werror build.
  set_source_files_properties("${out}" TARGET_DIRECTORY ${target}
                              PROPERTIES COMPILE_OPTIONS "-Wno-overlength-strings")
endfunction()
