//! The declaration of an enum numbered by a protocol's ids.

/// Declares a fieldless enum whose variants are numbered by a protocol's
/// ids (`Variant = 3,`), with `from_id` (the variant of an id read off the
/// wire, `None` for an unknown id) and `id` (the variant's id, to write).
///
/// The variants and their doc comments are written as in a plain enum
/// declaration, so the list of ids stays the one place they are named;
/// the enum derives `Clone, Copy, Debug, PartialEq, Eq, Hash` and is
/// `repr(u8)`.
///
/// ```
/// duplex_core::id_enum! {
///     /// The kinds of a packet.
///     pub enum Kind {
///         /// `0`: hello.
///         Hello = 0,
///         /// `1`: goodbye.
///         Bye = 1,
///     }
/// }
///
/// assert_eq!(Kind::from_id(1), Some(Kind::Bye));
/// assert_eq!(Kind::from_id(2), None);
/// assert_eq!(Kind::Hello.id(), 0);
/// ```
#[macro_export]
macro_rules! id_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $id:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant = $id,
            )+
        }

        impl $name {
            /// The variant of an id read off the wire; `None` for an id
            /// the protocol does not define.
            pub const fn from_id(id: u8) -> Option<Self> {
                match id {
                    $($id => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The variant's id, as the wire carries it.
            pub const fn id(self) -> u8 {
                self as u8
            }
        }
    };
}
