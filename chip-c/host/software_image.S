/* The firmware image the boot ROM measures (protocol.md 5.3): provisioning-software.bin, the
 * provisioning software's code, kept as it is in the chip's flash, and its length. */
    .section .rodata.tp_software_image, "a"
    .global tp_software_image
    .global tp_software_image_size
    .balign 4
tp_software_image_size:
    .long tp_software_image_end - tp_software_image
tp_software_image:
    .incbin TP_SOFTWARE_BIN
tp_software_image_end:
    .section .note.GNU-stack, "", %progbits
