! ch3d_embed.f90 -- Fortran bindings of ch3d_embed.h through iso_c_binding (Fortran 2003).
!
! Layout: the C API takes C-order arrays (n, 1, nx, ny, nz), z fastest. A Fortran array is
! column-major, so Fortran's phi(nz, ny, nx) IS C's (X, Y, Z) field, element for element (phi(k, j, i)
! = C's phi[i][j][k]); a batch is phi(nz, ny, nx, n), hidden states h(nz, ny, nx, hidden, n). Pass the
! C sizes n, nx, ny, nz: nx is the LAST Fortran extent. No copy, no transpose.
!
!   use ch3d_embed
!   type(c_ptr) :: h
!   real(c_float) :: phi(nz, ny, nx)
!   if (ch3d_open_f("models/crnn.onnx", 1, "cpu", h) /= CH3D_OK) stop ch3d_error_message()
!   status = ch3d_rollout(h, phi, 1_c_int64_t, int(nx, c_int64_t), int(ny, c_int64_t), int(nz, c_int64_t), 20_c_int64_t)
!   call ch3d_close(h)
!
! Every function returns a status (CH3D_OK = 0; the codes of ch3d_embed.h), never stops the program;
! ch3d_error_message() is the one-line text of the last error.
module ch3d_embed
  use, intrinsic :: iso_c_binding
  implicit none
  private
  public :: c_ptr, c_float, c_int, c_int64_t, c_double
  public :: ch3d_open_f, ch3d_close, ch3d_error_message, ch3d_reset, ch3d_step, ch3d_rollout, ch3d_step_halo
  public :: ch3d_hidden, ch3d_downscale, ch3d_kernel, ch3d_min_grid, ch3d_halo, ch3d_conservative
  public :: ch3d_time_per_step, ch3d_metadata_number_f

  integer(c_int), parameter, public :: CH3D_OK = 0, CH3D_ERR_ARGUMENT = 1, CH3D_ERR_MODEL = 2, &
    CH3D_ERR_ORT_TOO_OLD = 3, CH3D_ERR_PROVIDER = 4, CH3D_ERR_NONFINITE = 5, CH3D_ERR_GRID = 6, &
    CH3D_ERR_STATE = 7, CH3D_ERR_HALO = 8, CH3D_ERR_RUNTIME = 9, CH3D_ERR_MEMORY = 10, CH3D_ERR_ORT_MISSING = 11

  interface
    integer(c_int) function c_open(path, threads, provider, h) bind(C, name="ch3d_open")
      import :: c_int, c_char, c_ptr
      character(kind=c_char), intent(in) :: path(*), provider(*)
      integer(c_int), value :: threads
      type(c_ptr), intent(out) :: h
    end function
    subroutine ch3d_close(h) bind(C, name="ch3d_close")
      import :: c_ptr
      type(c_ptr), value :: h
    end subroutine
    type(c_ptr) function c_last_error() bind(C, name="ch3d_last_error")
      import :: c_ptr
    end function
    integer(c_int) function ch3d_reset(h) bind(C, name="ch3d_reset")
      import :: c_int, c_ptr
      type(c_ptr), value :: h
    end function
    !> one network step; phi(nz, ny, nx[, n]) updated in place
    integer(c_int) function ch3d_step(h, phi, n, nx, ny, nz) bind(C, name="ch3d_step")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: h
      real(c_float), intent(inout) :: phi(*)
      integer(c_int64_t), value :: n, nx, ny, nz
    end function
    !> `steps` network steps, hidden states carried (ch3d_reset first for a fresh rollout)
    integer(c_int) function ch3d_rollout(h, phi, n, nx, ny, nz, steps) bind(C, name="ch3d_rollout")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: h
      real(c_float), intent(inout) :: phi(*)
      integer(c_int64_t), value :: n, nx, ny, nz, steps
    end function
    !> stateless subdomain step: inputs with `halo` ghost layers per side, outputs the interiors
    integer(c_int) function ch3d_step_halo(h, phi, h1, h2, n, nx, ny, nz, halo, phi_out, h1_out, h2_out) &
        bind(C, name="ch3d_step_halo")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: h
      real(c_float), intent(in) :: phi(*), h1(*), h2(*)
      integer(c_int64_t), value :: n, nx, ny, nz, halo
      real(c_float), intent(out) :: phi_out(*), h1_out(*), h2_out(*)
    end function
    integer(c_int64_t) function ch3d_hidden(h) bind(C, name="ch3d_hidden")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int64_t) function ch3d_downscale(h) bind(C, name="ch3d_downscale")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int64_t) function ch3d_kernel(h) bind(C, name="ch3d_kernel")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int64_t) function ch3d_min_grid(h) bind(C, name="ch3d_min_grid")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int64_t) function ch3d_halo(h) bind(C, name="ch3d_halo")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int) function ch3d_conservative(h) bind(C, name="ch3d_conservative")
      import :: c_int, c_ptr
      type(c_ptr), value :: h
    end function
    real(c_double) function ch3d_time_per_step(h) bind(C, name="ch3d_time_per_step")
      import :: c_double, c_ptr
      type(c_ptr), value :: h
    end function
    integer(c_int) function c_metadata_number(h, key, value) bind(C, name="ch3d_metadata_number")
      import :: c_int, c_ptr, c_char, c_double
      type(c_ptr), value :: h
      character(kind=c_char), intent(in) :: key(*)
      real(c_double), intent(out) :: value
    end function
    integer(c_size_t) function c_strlen(s) bind(C, name="strlen")
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
    end function
  end interface

contains

  !> open a model: provider "cpu", "cuda", "cuda:N" or "auto"; threads 0 = all cores
  integer(c_int) function ch3d_open_f(path, threads, provider, h) result(status)
    character(len=*), intent(in) :: path, provider
    integer, intent(in) :: threads
    type(c_ptr), intent(out) :: h
    status = c_open(trim(path)//c_null_char, int(threads, c_int), trim(provider)//c_null_char, h)
  end function

  !> a numeric metadata entry (physics: "epsilon", "dt", "steps_per_frame", "dx", ...)
  integer(c_int) function ch3d_metadata_number_f(h, key, value) result(status)
    type(c_ptr), intent(in) :: h
    character(len=*), intent(in) :: key
    real(c_double), intent(out) :: value
    status = c_metadata_number(h, trim(key)//c_null_char, value)
  end function

  !> the one-line text of the last error of this thread
  function ch3d_error_message() result(msg)
    character(len=:), allocatable :: msg
    character(kind=c_char), pointer :: chars(:)
    type(c_ptr) :: p
    integer :: i, n
    p = c_last_error()
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate (character(len=n) :: msg)
    do i = 1, n
      msg(i:i) = chars(i)
    end do
  end function
end module ch3d_embed
