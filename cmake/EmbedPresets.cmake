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
endfunction()
