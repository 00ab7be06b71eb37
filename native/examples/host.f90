! host.f90 -- a Fortran host of ch3d_embed through the iso_c_binding module ch3d_embed.
!
!   host_f90 MODEL INPUT OUTPUT STEPS NX NY NZ [FRAMES K]
!
! INPUT: the initial field on the network grid as raw float32 in C order (X, Y, Z), z fastest: read
! straight into the Fortran array phi(NZ, NY, NX) (see ch3d_embed.f90: Fortran's phi(nz, ny, nx) is C's
! (X, Y, Z)). FRAMES (optional): K solver frames, raw float32 (K, X, Y, Z), fed through ch3d_step to warm
! the hidden states up; the rollout then starts from INPUT. OUTPUT: the field after STEPS steps, raw
! float32 in the same order. Exit status 0, or 1 with one line (ch3d_error_message()).
program host_f90
  use ch3d_embed
  implicit none
  type(c_ptr) :: h
  real(c_float), allocatable :: phi(:, :, :), frames(:, :, :, :)
  character(len=1024) :: model, input, output, arg
  integer :: steps, nx, ny, nz, k, i, u, status
  double precision :: m0, m1
  real(c_double) :: epsilon

  if (command_argument_count() < 7) then
    write (0, '(a)') "usage: host_f90 MODEL INPUT OUTPUT STEPS NX NY NZ [FRAMES K]"
    stop 1
  end if
  call get_command_argument(1, model)
  call get_command_argument(2, input)
  call get_command_argument(3, output)
  call get_command_argument(4, arg); read (arg, *) steps
  call get_command_argument(5, arg); read (arg, *) nx
  call get_command_argument(6, arg); read (arg, *) ny
  call get_command_argument(7, arg); read (arg, *) nz

  allocate (phi(nz, ny, nx))              ! C's (X, Y, Z)
  open (newunit=u, file=trim(input), access="stream", form="unformatted", status="old", action="read")
  read (u) phi
  close (u)

  if (ch3d_open_f(trim(model), 1, "cpu", h) /= CH3D_OK) call fail()
  if (ch3d_metadata_number_f(h, "epsilon", epsilon) /= CH3D_OK) call fail()
  write (*, '(a, i0, a, i0, a, i0, a, f6.3)') "model: hidden ", ch3d_hidden(h), ", downscale ", ch3d_downscale(h), &
    ", halo ", ch3d_halo(h), ", epsilon ", epsilon

  if (command_argument_count() >= 9) then  ! warm the hidden states up on K solver frames
    call get_command_argument(9, arg); read (arg, *) k
    call get_command_argument(8, arg)
    allocate (frames(nz, ny, nx, k))
    open (newunit=u, file=trim(arg), access="stream", form="unformatted", status="old", action="read")
    read (u) frames
    close (u)
    do i = 1, k
      if (ch3d_step(h, frames(:, :, :, i), 1_c_int64_t, int(nx, c_int64_t), int(ny, c_int64_t), &
                    int(nz, c_int64_t)) /= CH3D_OK) call fail()
    end do
  end if

  m0 = sum(dble(phi)) / size(phi)
  status = ch3d_rollout(h, phi, 1_c_int64_t, int(nx, c_int64_t), int(ny, c_int64_t), int(nz, c_int64_t), &
                        int(steps, c_int64_t))
  if (status /= CH3D_OK) call fail()
  m1 = sum(dble(phi)) / size(phi)
  write (*, '(i0, a, f10.7, a, f10.7, a, f10.7)') steps, " steps: mean phi ", m0, " -> ", m1, &
    ", phi(1,1,1) ", phi(1, 1, 1)
  if (ch3d_conservative(h) == 1 .and. abs(m1 - m0) > 1d-5) then
    write (0, '(a)') "host_f90: mass not kept"
    stop 1
  end if
  call ch3d_close(h)

  open (newunit=u, file=trim(output), access="stream", form="unformatted", status="replace", action="write")
  write (u) phi
  close (u)

contains
  subroutine fail()
    write (0, '(a)') "host_f90: "//ch3d_error_message()
    stop 1
  end subroutine
end program host_f90
