; Inno Setup 6 recipe for Audio Restorer on Windows (per-user or all-users install, offline).
; Build the one-folder app first, on Windows, in the project's venv:
;   pyinstaller --noconfirm --distpath dist\full --workpath build\full packaging\audio_restorer.spec
; then compile this script (ISCC.exe from Inno Setup 6):
;   iscc /DAppVersion=0.1.0 /DVariant=full packaging\windows\audio-restorer.iss
; The installer lands in dist\packages\. Not built or tested on the Linux build machine; see
; docs/packaging.md for what was verified.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "full"
#endif
#define AppName "Audio Restorer"
#define AppExe "audio-restorer.exe"
#define SourceDir "..\..\dist\" + Variant + "\audio-restorer"

[Setup]
AppId={{6F3A1C52-8B0E-4C7E-9E0B-2B1D5A7C4F10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Audio Restorer contributors
DefaultDirName={autopf}\Audio Restorer
DefaultGroupName=Audio Restorer
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist\packages
OutputBaseFilename=audio-restorer-{#AppVersion}-{#Variant}-windows-x64-setup
SetupIconFile=..\icons\audio-restorer.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
LicenseFile=..\..\LICENSE
ChangesAssociations=yes
WizardStyle=modern

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion
Source: "..\..\THIRD_PARTY_LICENSES.md"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
; the executable is a console program (it is also the CLI): the shortcut starts the window
Name: "{group}\Audio Restorer"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; IconFilename: "{app}\{#AppExe}"
Name: "{group}\Audio Restorer command prompt"; Filename: "{cmd}"; Parameters: "/k ""cd /d %USERPROFILE% && set PATH={app};%PATH%"""
Name: "{group}\Uninstall Audio Restorer"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Audio Restorer"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "openwith"; Description: "Offer Audio Restorer in 'Open with' for audio files"

[Registry]
; "Open with" entries for common audio types (no default handler is taken over)
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueData: """{app}\{#AppExe}"" gui ""%1"""; Flags: uninsdeletekey; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".wav"; ValueData: ""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".flac"; ValueData: ""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".mp3"; ValueData: ""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".aif"; ValueData: ""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".ogg"; ValueData: ""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.wav\OpenWithProgids"; ValueType: string; ValueName: "AudioRestorer.audio"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.flac\OpenWithProgids"; ValueType: string; ValueName: "AudioRestorer.audio"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.mp3\OpenWithProgids"; ValueType: string; ValueName: "AudioRestorer.audio"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\AudioRestorer.audio\shell\open\command"; ValueType: string; ValueData: """{app}\{#AppExe}"" gui ""%1"""; Flags: uninsdeletekey; Tasks: openwith

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "gui"; Description: "Start Audio Restorer"; Flags: nowait postinstall skipifsilent
