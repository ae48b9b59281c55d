#include "server/demo_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/tracker.h"

namespace fieldsync::server {

namespace {

// ---------------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------------

// A first-level (or second-level) administrative area projects work in.
struct Area {
  const char* name;
  // Three letters used in pseudonymous patient references ("KE-KSM-000123").
  const char* code;
  // Approximate centre, WGS84 degrees.
  double lat;
  double lon;
  // Districts, sub-counties, communes: the admin area of sites and of project titles.
  std::vector<const char*> districts;
  // Share of measured tests above the WHO guideline (fluoride 1.5 mg/l, arsenic 10 ug/l).
  double fluoride_risk;
  double arsenic_risk;
};

struct Country {
  const char* code;
  const char* currency;
  // Local currency units per US dollar, roughly (2025).
  double per_usd;
  // Sites lie within this many degrees of their area's centre (small for Rwanda and islands).
  double jitter_deg;
  // A box around the country; every site is clamped into it.
  double lat_min, lat_max, lon_min, lon_max;
  std::vector<Area> areas;
  std::vector<const char*> villages;
  // absl::Substitute pattern of a school's name; $0 is a village.
  const char* school_pattern;
};

const std::vector<Country>& Countries() {
  // clang-format off
  static const auto* countries = new std::vector<Country>{
      {"KE", "KES", 129, 0.3, -4.7, 5.0, 33.9, 41.9,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Turkana County", "TRK", 3.12, 35.60,
         {"Turkana North", "Turkana West", "Turkana Central", "Loima", "Turkana South"},
         0.35, 0.02},
        {"Marsabit County", "MRS", 2.33, 37.99,
         {"Saku", "Laisamis", "North Horr", "Moyale"}, 0.2, 0.01},
        {"Kisumu County", "KSM", -0.09, 34.85,
         {"Kisumu East", "Nyando", "Nyakach", "Muhoroni"}, 0.03, 0.01},
        {"Kitui County", "KTU", -1.37, 38.01,
         {"Kitui Central", "Mwingi North", "Kitui South", "Kitui Rural"}, 0.15, 0.01},
        {"Kajiado County", "KJD", -2.10, 36.78,
         {"Kajiado Central", "Kajiado West", "Loitokitok", "Kajiado East"}, 0.5, 0.01},
        {"Nakuru County", "NKR", -0.30, 36.07,
         {"Naivasha", "Gilgil", "Rongai", "Subukia"}, 0.65, 0.01},
        {"Homa Bay County", "HMB", -0.55, 34.55, {"Rangwe", "Ndhiwa", "Karachuonyo"}, 0.03, 0.01}},
       {"Lokichar", "Kalokol", "Nakwamoru", "Kakuma", "Lorugum", "Kargi", "Ileret", "Mwingi",
        "Katse", "Nyakach", "Rangwe", "Kendu Bay", "Ahero", "Isinya", "Namanga", "Lokori", "Kapedo",
        "Kimana"},
       "$0 Primary School"},
      {"UG", "UGX", 3700, 0.25, -1.4, 4.2, 29.6, 35.0,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Moroto District", "MRT", 2.53, 34.50,
         {"Rupa", "Nadunget", "Katikekile", "Tapac"}, 0.05, 0.01},
        {"Kotido District", "KTD", 3.01, 34.11,
         {"Rengen", "Nakapelimoru", "Panyangara", "Kacheri"}, 0.05, 0.01},
        {"Gulu District", "GUL", 2.77, 32.30,
         {"Awach", "Bungatira", "Paicho", "Palaro"}, 0.02, 0.01},
        {"Lira District", "LIR", 2.25, 32.90, {"Aromo", "Agweng", "Ogur", "Adekokwok"}, 0.02, 0.01},
        {"Mbale District", "MBL", 1.08, 34.18,
         {"Bungokho", "Busiu", "Bukonde", "Wanale"}, 0.03, 0.01},
        {"Arua District", "ARU", 3.02, 30.95, {"Vurra", "Ayivu", "Pajulu", "Logiri"}, 0.02, 0.01},
        {"Kasese District", "KSS", 0.18, 30.15,
         {"Bwera", "Kyarumba", "Karusandara", "Maliba"}, 0.2, 0.01}},
       {"Kangole", "Nadunget", "Lokopo", "Awach", "Bobi", "Unyama", "Aloi", "Adwari", "Bukedea",
        "Budaka", "Kyarumba", "Bwera", "Omugo", "Rhino Camp", "Panyangara", "Nakapelimoru",
        "Bugema", "Ocheko"},
       "$0 Primary School"},
      {"TZ", "TZS", 2550, 0.35, -11.7, -1.0, 29.3, 40.4,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Arusha Region", "ARU", -3.30, 36.60,
         {"Arumeru", "Monduli", "Longido", "Karatu"}, 0.65, 0.01},
        {"Manyara Region", "MNY", -4.31, 36.95,
         {"Babati", "Mbulu", "Simanjiro", "Hanang"}, 0.45, 0.01},
        {"Singida Region", "SGD", -4.82, 34.74,
         {"Ikungi", "Manyoni", "Iramba", "Mkalama"}, 0.35, 0.01},
        {"Dodoma Region", "DOM", -6.16, 35.75, {"Kondoa", "Chemba", "Bahi", "Mpwapwa"}, 0.1, 0.01},
        {"Shinyanga Region", "SHY", -3.66, 33.42,
         {"Kishapu", "Kahama", "Shinyanga Rural"}, 0.2, 0.01},
        {"Mwanza Region", "MWZ", -2.75, 33.10,
         {"Magu", "Sengerema", "Kwimba", "Misungwi"}, 0.03, 0.01},
        {"Mtwara Region", "MTW", -10.60, 39.40,
         {"Newala", "Tandahimba", "Masasi", "Nanyumbu"}, 0.02, 0.01},
        {"Kigoma Region", "KGM", -4.60, 30.20,
         {"Kasulu", "Kibondo", "Uvinza", "Kakonko"}, 0.02, 0.01}},
       {"Mto wa Mbu", "Ngarenanyuki", "Oldonyo Sambu", "Mbulu", "Babati", "Kondoa", "Chemba",
        "Ikungi", "Manyoni", "Kishapu", "Maswa", "Magu", "Sengerema", "Newala", "Tandahimba",
        "Uvinza", "Kibondo", "Mererani"},
       "$0 Primary School"},
      {"ET", "ETB", 120, 0.3, 3.4, 14.9, 33.0, 48.0,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Oromia, East Shewa Zone", "ESH", 8.30, 39.00,
         {"Adami Tulu Jido Kombolcha", "Dugda", "Bora", "Lume"}, 0.7, 0.01},
        {"Oromia, West Arsi Zone", "WAR", 7.20, 38.60,
         {"Shashamane", "Arsi Negele", "Siraro", "Shalla"}, 0.6, 0.01},
        {"Sidama Region", "SDM", 6.70, 38.45,
         {"Hawassa Zuria", "Aleta Wondo", "Dale", "Boricha"}, 0.3, 0.01},
        {"Amhara, North Wollo Zone", "NWL", 11.70, 39.40,
         {"Kobo", "Gubalafto", "Lasta", "Meket"}, 0.05, 0.01},
        {"Afar, Awsi Rasu Zone", "AFR", 11.80, 41.00,
         {"Asayita", "Dubti", "Mille", "Chifra"}, 0.4, 0.02},
        {"Somali, Fafan Zone", "FAF", 9.30, 42.80,
         {"Kebribeyah", "Jigjiga", "Tuli Guled", "Harshin"}, 0.15, 0.01},
        {"South Ethiopia, Wolaita Zone", "WLT", 6.85, 37.75,
         {"Sodo Zuria", "Boloso Sore", "Damot Gale", "Humbo"}, 0.05, 0.01}},
       {"Adami Tulu", "Ziway", "Meki", "Bulbula", "Arsi Negele", "Kofele", "Aleta Wondo",
        "Yirgalem", "Woldia", "Kobo", "Lalibela", "Asayita", "Dubti", "Kebribeyah", "Areka",
        "Shashamane", "Alaba", "Boditi"},
       "$0 Primary School"},
      {"RW", "RWF", 1400, 0.08, -2.8, -1.1, 28.9, 30.85,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Eastern Province, Nyagatare District", "NYG", -1.35, 30.30,
         {"Karangazi", "Rwimiyaga", "Matimba", "Nyagatare"}, 0.02, 0.01},
        {"Eastern Province, Kirehe District", "KRH", -2.22, 30.60,
         {"Mahama", "Nyamugari", "Gahara", "Mpanga"}, 0.02, 0.01},
        {"Eastern Province, Bugesera District", "BGS", -2.20, 30.15,
         {"Nyamata", "Ruhuha", "Mareba", "Gashora"}, 0.03, 0.01},
        {"Southern Province, Huye District", "HUY", -2.60, 29.74,
         {"Gishamvu", "Rusatira", "Mbazi", "Tumba"}, 0.02, 0.01},
        {"Northern Province, Musanze District", "MSZ", -1.50, 29.63,
         {"Kinigi", "Busogo", "Nyange", "Gataraga"}, 0.05, 0.01}},
       {"Karangazi", "Rwimiyaga", "Mahama", "Nyamugari", "Gishamvu", "Rusatira", "Kinigi", "Busogo",
        "Nyamata", "Ruhuha", "Mareba", "Gashora", "Matimba", "Mbazi"},
       "GS $0"},
      {"MW", "MWK", 1750, 0.2, -17.1, -9.4, 32.7, 35.9,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Lilongwe District", "LLW", -13.98, 33.78,
         {"Mitundu", "Nathenje", "Chitsime", "Chadza"}, 0.03, 0.01},
        {"Dedza District", "DDZ", -14.30, 34.20,
         {"Mua", "Golomoti", "Kachindamoto", "Kaphuka"}, 0.03, 0.01},
        {"Zomba District", "ZBA", -15.38, 35.32,
         {"Thondwe", "Jali", "Mwambo", "Chingale"}, 0.03, 0.01},
        {"Mangochi District", "MGC", -14.48, 35.30,
         {"Monkey Bay", "Makanjira", "Namwera", "Chilipa"}, 0.05, 0.01},
        {"Mzimba District", "MZB", -11.90, 33.60,
         {"Ekwendeni", "Embangweni", "Euthini", "Edingeni"}, 0.02, 0.01},
        {"Chikwawa District", "CKW", -16.03, 34.80,
         {"Nchalo", "Ngabu", "Mitondo", "Kakoma"}, 0.08, 0.01},
        {"Kasungu District", "KSG", -13.03, 33.48,
         {"Santhe", "Chamama", "Kaluluma", "Chulu"}, 0.02, 0.01}},
       {"Mitundu", "Nathenje", "Mua", "Golomoti", "Thondwe", "Jali", "Makanjira", "Namwera",
        "Ekwendeni", "Embangweni", "Nchalo", "Ngabu", "Santhe", "Chamama", "Kaluluma", "Chulu"},
       "$0 Primary School"},
      {"NG", "NGN", 1550, 0.35, 4.3, 13.8, 2.7, 14.6,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Kano State", "KAN", 12.00, 8.52, {"Gezawa", "Dawakin Kudu", "Bichi", "Kura"}, 0.05, 0.01},
        {"Sokoto State", "SOK", 12.90, 5.30,
         {"Bodinga", "Wamakko", "Kware", "Tambuwal"}, 0.05, 0.01},
        {"Bauchi State", "BAU", 10.31, 9.84, {"Darazo", "Ningi", "Toro", "Alkaleri"}, 0.12, 0.01},
        {"Kaduna State", "KAD", 10.52, 7.44,
         {"Kajuru", "Zangon Kataf", "Igabi", "Kachia"}, 0.03, 0.01},
        {"Plateau State", "PLA", 9.22, 9.52,
         {"Bokkos", "Mangu", "Pankshin", "Barkin Ladi"}, 0.08, 0.01},
        {"Benue State", "BEN", 7.34, 8.74, {"Gboko", "Otukpo", "Makurdi", "Kwande"}, 0.02, 0.01},
        {"Jigawa State", "JIG", 12.23, 9.56,
         {"Dutse", "Hadejia", "Ringim", "Kazaure"}, 0.08, 0.01}},
       {"Gezawa", "Dawakin Kudu", "Bodinga", "Wamakko", "Darazo", "Ningi", "Kajuru", "Zonkwa",
        "Bokkos", "Mangu", "Gboko", "Otukpo", "Dutse", "Hadejia", "Toro", "Kachia", "Bichi",
        "Ringim"},
       "LEA Primary School $0"},
      {"GH", "GHS", 15, 0.25, 4.8, 11.1, -3.2, 1.1,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Northern Region", "NTH", 9.40, -0.85,
         {"Tolon", "Kumbungu", "Savelugu", "Gushegu"}, 0.08, 0.01},
        {"Upper East Region", "UER", 10.75, -0.85,
         {"Bongo", "Kassena-Nankana", "Bawku West", "Talensi"}, 0.25, 0.01},
        {"Upper West Region", "UWR", 10.25, -2.15,
         {"Lawra", "Nadowli-Kaleo", "Jirapa", "Wa East"}, 0.05, 0.02},
        {"Volta Region", "VOL", 6.80, 0.40,
         {"Kpando", "Hohoe", "Ho West", "Afadzato South"}, 0.02, 0.01},
        {"Bono East Region", "BER", 7.75, -1.05,
         {"Kintampo North", "Atebubu-Amantin", "Pru East", "Techiman"}, 0.03, 0.01},
        {"Savannah Region", "SAV", 9.08, -1.82,
         {"West Gonja", "Bole", "Central Gonja"}, 0.05, 0.01}},
       {"Tolon", "Kumbungu", "Savelugu", "Bongo", "Navrongo", "Zebilla", "Lawra", "Nadowli",
        "Jirapa", "Kpando", "Hohoe", "Kintampo", "Atebubu", "Damongo", "Bole", "Sandema",
        "Walewale", "Yendi"},
       "$0 D/A Primary School"},
      {"SN", "XOF", 600, 0.2, 12.4, 16.6, -17.4, -11.4,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Kaolack Region", "KLK", 14.00, -15.90,
         {"Nioro du Rip", "Kaolack", "Guinguinéo"}, 0.45, 0.01},
        {"Fatick Region", "FTK", 14.30, -16.20, {"Foundiougne", "Gossas", "Fatick"}, 0.5, 0.01},
        {"Diourbel Region", "DBL", 14.65, -16.10, {"Bambey", "Mbacké", "Diourbel"}, 0.4, 0.01},
        {"Tambacounda Region", "TBC", 13.77, -13.67,
         {"Goudiry", "Koumpentoum", "Bakel", "Tambacounda"}, 0.03, 0.01},
        {"Kolda Region", "KLD", 12.95, -14.94,
         {"Vélingara", "Médina Yoro Foula", "Kolda"}, 0.02, 0.01},
        {"Matam Region", "MTM", 15.55, -13.40, {"Kanel", "Ranérou", "Matam"}, 0.05, 0.01},
        {"Louga Region", "LGA", 15.50, -15.90, {"Linguère", "Kébémer", "Louga"}, 0.15, 0.01}},
       {"Ndoffane", "Gandiaye", "Nioro du Rip", "Sokone", "Foundiougne", "Bambey", "Ndangalma",
        "Goudiry", "Koumpentoum", "Vélingara", "Pakour", "Kanel", "Ranérou", "Dahra", "Kébémer",
        "Sagatta", "Keur Madiabel", "Passy"},
       "École élémentaire de $0"},
      {"KH", "KHR", 4100, 0.2, 10.4, 14.6, 102.4, 107.6,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Kandal Province", "KDL", 11.30, 105.00,
         {"Ksach Kandal", "Lvea Aem", "Kien Svay", "Muk Kampul"}, 0.02, 0.45},
        {"Prey Veng Province", "PVG", 11.48, 105.33,
         {"Ba Phnum", "Kamchay Mear", "Peam Ro", "Sithor Kandal"}, 0.02, 0.35},
        {"Kampong Cham Province", "KCM", 12.00, 105.45,
         {"Kang Meas", "Koh Sotin", "Srey Santhor", "Batheay"}, 0.02, 0.25},
        {"Takeo Province", "TKO", 10.99, 104.78,
         {"Bati", "Tram Kak", "Prey Kabbas", "Samraong"}, 0.02, 0.05},
        {"Battambang Province", "BTB", 13.10, 103.20,
         {"Banan", "Thma Koul", "Moung Ruessei", "Ek Phnom"}, 0.02, 0.02},
        {"Siem Reap Province", "SRP", 13.36, 103.86,
         {"Puok", "Angkor Chum", "Prasat Bakong", "Soutr Nikom"}, 0.02, 0.02},
        {"Kratie Province", "KRT", 12.49, 106.02,
         {"Chhloung", "Sambour", "Chet Borei", "Prek Prasab"}, 0.02, 0.2}},
       {"Prek Ambel", "Roka Kong", "Kampong Phnom", "Preaek Ta Kov", "Svay Antor", "Peam Chor",
        "Chi Haer", "Khpob Ateav", "Ampil Tuek", "Trapeang Thum", "Ta Kream", "Ou Mal",
        "Kouk Thlok", "Kampong Svay", "Bos Leav", "Thma Kreae"},
       "$0 Primary School"},
      {"VN", "VND", 25400, 0.12, 8.6, 23.3, 102.2, 109.4,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Hà Nam Province", "HNM", 20.54, 105.92,
         {"Duy Tiên", "Lý Nhân", "Kim Bảng", "Thanh Liêm"}, 0.02, 0.5},
        {"Hà Nội, rural districts", "HNI", 20.75, 105.80,
         {"Ứng Hòa", "Mỹ Đức", "Thanh Oai", "Phú Xuyên"}, 0.02, 0.35},
        {"An Giang Province", "AGG", 10.52, 105.13,
         {"Chợ Mới", "Phú Tân", "An Phú", "Tân Châu"}, 0.02, 0.3},
        {"Đồng Tháp Province", "DTP", 10.55, 105.60,
         {"Tân Hồng", "Cao Lãnh", "Hồng Ngự", "Tam Nông"}, 0.02, 0.3},
        {"Điện Biên Province", "DBN", 21.38, 103.10,
         {"Điện Biên Đông", "Mường Ảng", "Tuần Giáo", "Mường Chà"}, 0.03, 0.02},
        {"Quảng Trị Province", "QTR", 16.75, 106.90,
         {"Hướng Hóa", "Đakrông", "Gio Linh", "Vĩnh Linh"}, 0.02, 0.02},
        {"Gia Lai Province", "GLI", 13.98, 108.00,
         {"Chư Sê", "Kbang", "Chư Păh", "Ia Grai"}, 0.03, 0.02}},
       {"Yên Bắc", "Nhân Thịnh", "Tượng Lĩnh", "Hòa Lâm", "Phù Lưu Tế", "Long Điền", "Phú Thạnh",
        "Tân Hộ Cơ", "Mỹ Thọ", "Mường Luân", "Ẳng Tở", "Tân Hợp", "A Ngo", "Ia Blang", "Đak Smar",
        "Vĩnh Xương"},
       "Trường Tiểu học $0"},
      {"LA", "LAK", 21800, 0.2, 14.0, 22.4, 100.2, 107.6,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Savannakhet Province", "SVK", 16.50, 105.60,
         {"Xaybouly", "Outhoumphone", "Songkhone", "Atsaphangthong"}, 0.02, 0.1},
        {"Champasak Province", "CPS", 14.90, 105.90,
         {"Pakxong", "Sukhuma", "Champasak", "Bachiangchaleunsook"}, 0.02, 0.05},
        {"Luang Prabang Province", "LPB", 19.88, 102.30,
         {"Nan", "Pak Ou", "Chomphet", "Xieng Ngeun"}, 0.02, 0.01},
        {"Salavan Province", "SLV", 15.72, 106.42,
         {"Vapi", "Lao Ngam", "Khongxedon", "Salavan"}, 0.02, 0.04},
        {"Attapeu Province", "ATP", 14.80, 106.83,
         {"Sanamxay", "Samakhixay", "Phouvong", "Xaysetha"}, 0.02, 0.03},
        {"Oudomxay Province", "ODX", 20.69, 101.99, {"Namor", "Beng", "Xay", "La"}, 0.02, 0.01}},
       {"Ban Nongbua", "Ban Phonsavang", "Ban Donkhoun", "Ban Nakham", "Ban Houayhai",
        "Ban Thongkhan", "Ban Nongsaeng", "Ban Phonthong", "Ban Natan", "Ban Sisavath",
        "Ban Houaykong", "Ban Xieng Da", "Ban Napho", "Ban Khoksa"},
       "$0 Primary School"},
      {"PH", "PHP", 58, 0.08, 4.7, 21.0, 117.0, 126.5,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Eastern Samar", "ESM", 11.60, 125.40,
         {"Borongan", "Guiuan", "Dolores", "Oras"}, 0.02, 0.01},
        {"Leyte", "LEY", 11.00, 124.85, {"Dulag", "Tanauan", "Abuyog", "Palo"}, 0.02, 0.01},
        {"Lanao del Sur", "LDS", 7.85, 124.30,
         {"Marawi", "Balindong", "Wao", "Malabang"}, 0.02, 0.01},
        {"Maguindanao del Sur", "MGS", 6.94, 124.42,
         {"Datu Piang", "Ampatuan", "Shariff Aguak", "Buluan"}, 0.02, 0.01},
        {"Negros Occidental", "NOC", 10.20, 123.00,
         {"Kabankalan", "Himamaylan", "Sipalay", "Hinigaran"}, 0.02, 0.01},
        {"Bohol", "BOH", 9.85, 124.15, {"Talibon", "Ubay", "Carmen", "Trinidad"}, 0.02, 0.01},
        {"Masbate", "MSB", 12.20, 123.55, {"Aroroy", "Cataingan", "Mobo", "Milagros"}, 0.02, 0.01}},
       {"San Isidro", "Santo Niño", "Poblacion", "San Roque", "Bagong Silang", "Malinao",
        "Cabacungan", "Lumbia", "Maharlika", "Bagumbayan", "Lumbac", "Tubod", "Mabini",
        "San Vicente"},
       "$0 Elementary School"},
      {"ID", "IDR", 16300, 0.12, -10.9, 5.9, 95.2, 140.9,
       // area, code, latitude, longitude, districts, fluoride risk, arsenic risk
       {{"Nusa Tenggara Timur, Kupang Regency", "KPG", -9.95, 123.90,
         {"Amarasi", "Fatuleu", "Kupang Timur", "Sulamu"}, 0.05, 0.01},
        {"Nusa Tenggara Timur, East Sumba Regency", "SBT", -9.85, 120.30,
         {"Waingapu", "Lewa", "Pandawai", "Haharu"}, 0.05, 0.01},
        {"Nusa Tenggara Barat, East Lombok Regency", "LTM", -8.55, 116.55,
         {"Sakra", "Keruak", "Jerowaru", "Pringgabaya"}, 0.03, 0.01},
        {"Jawa Barat, Garut Regency", "GRT", -7.35, 107.85,
         {"Cikajang", "Pameungpeuk", "Cisewu", "Bayongbong"}, 0.02, 0.01},
        {"Papua Pegunungan, Jayawijaya Regency", "JYW", -4.08, 138.95,
         {"Wamena", "Kurulu", "Asologaima", "Hubikosi"}, 0.02, 0.01},
        {"Sulawesi Tengah, Sigi Regency", "SGI", -1.40, 119.95,
         {"Dolo", "Marawola", "Biromaru", "Kulawi"}, 0.03, 0.01}},
       {"Oelnasi", "Tesabela", "Kambera", "Lewa Paku", "Pijot", "Sakra", "Cikajang", "Mancagahar",
        "Wesaput", "Kurulu", "Soulowe", "Pesaku", "Tulo", "Balane"},
       "SD Negeri $0"},
  };
  // clang-format on
  return *countries;
}

const Country& CountryByCode(absl::string_view code) {
  for (const Country& c : Countries()) {
    if (code == c.code) return c;
  }
  return Countries().front();  // unreachable: the partner table only names listed countries
}

// Relative weights of the three project kinds in a partner's portfolio.
struct KindMix {
  double well, cataract, classroom;
};

// How a partner's eye teams write visual acuity: Snellen in metres ("6/18"), in feet
// ("20/60"), or logMAR ("logMAR 0.48") from a logMAR chart.
enum class Notation { kMetres, kFeet, kLogMar };

struct PartnerTemplate {
  const char* name;
  // IATI organisation identifier, the prefix of the partner's activity identifiers.
  const char* iati_org;
  std::vector<const char*> countries;
  KindMix mix;
  Notation notation;
};

// Fictional organisations. The first four together cover water, eyes and schools in both
// regions, so that small demos still show every kind, fluoride and arsenic areas, and
// currencies without minor units (UGX, VND).
const std::vector<PartnerTemplate>& PartnerTemplates() {
  // clang-format off
  static const auto* partners = new std::vector<PartnerTemplate>{
      // name, IATI organisation, countries, {well, cataract, classroom}, acuity notation
      {"Maji Safi Community Trust", "KE-NCB-2180519", {"KE", "UG"},
       {0.6, 0.1, 0.3}, Notation::kMetres},
      {"Mekong Clean Water Partnership", "GB-CHC-1167432", {"KH", "VN", "LA"},
       {0.7, 0.05, 0.25}, Notation::kLogMar},
      {"Rift Valley Sight Foundation", "GB-CHC-1098765", {"ET", "KE", "TZ"},
       {0.2, 0.75, 0.05}, Notation::kLogMar},
      {"Bayanihan Schools Foundation", "PH-SEC-CN201912345", {"PH", "ID"},
       {0.3, 0.1, 0.6}, Notation::kFeet},
      {"Sahel Water and Learning Network", "NL-KVK-41234567", {"SN", "GH", "NG"},
       {0.5, 0.1, 0.4}, Notation::kMetres},
      {"Lake Victoria Eye Health Alliance", "GB-CHC-1152207", {"UG", "TZ", "KE"},
       {0.05, 0.8, 0.15}, Notation::kMetres},
      {"Warm Heart Water Initiative", "GB-SC-SC045123", {"MW"}, {0.8, 0.0, 0.2}, Notation::kMetres},
      {"Mekong Vision Outreach", "US-EIN-261234567", {"KH", "LA", "VN"},
       {0.1, 0.85, 0.05}, Notation::kLogMar},
      {"Thousand Hills Education Partners", "US-EIN-472345678", {"RW"},
       {0.2, 0.0, 0.8}, Notation::kMetres},
      {"Nusantara Safe Water Foundation", "NL-KVK-56789012", {"ID"},
       {0.8, 0.2, 0.0}, Notation::kMetres},
      {"Horn of Africa Community Water", "GB-CHC-1172334", {"ET"},
       {0.9, 0.0, 0.1}, Notation::kMetres},
      {"West African Sight Trust", "GB-CHC-1123456", {"GH", "NG", "SN"},
       {0.0, 0.9, 0.1}, Notation::kMetres},
  };
  // clang-format on
  return *partners;
}

struct Donor {
  const char* name;
  // Budget currency; empty: the project country's currency.
  const char* currency;
  double weight;
};

const std::vector<Donor>& Donors() {
  static const auto* donors = new std::vector<Donor>{
      {"Harbour Family Foundation", "USD", 10},
      {"Clearwater Giving Circle", "USD", 8},
      {"North Star Vision Fund", "USD", 7},
      {"Open Schoolhouse Foundation", "USD", 7},
      {"Stichting Helder Water", "EUR", 7},
      {"Fondation Lumière pour Tous", "EUR", 6},
      {"Kinderhilfe Schulbank e.V.", "EUR", 5},
      {"Brightwater Trust", "GBP", 6},
      {"Hallam Community Appeal", "GBP", 4},
      {"The Sightline Charitable Trust", "GBP", 3},
      {"Local government co-funding", "", 14},
      {"Community contributions and local businesses", "", 10},
  };
  return *donors;
}

// Units of `currency` per US dollar.
double PerUsd(absl::string_view currency, const Country& country) {
  if (currency == "USD") return 1.0;
  if (currency == "EUR") return 0.92;
  if (currency == "GBP") return 0.79;
  return country.per_usd;
}

// ---------------------------------------------------------------------------------------------
// Random numbers. Only the engine comes from <random>: the distributions of the standard
// library differ between implementations, these do not, so a seed means the same data
// everywhere.
// ---------------------------------------------------------------------------------------------

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  uint64_t Bits() { return engine_(); }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [lo, hi].
  int64_t Int(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + static_cast<int64_t>(engine_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return Uniform() < p; }
  double Normal(double mean, double sd) {
    double u1 = 1.0 - Uniform();  // (0, 1]
    double u2 = Uniform();
    return mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // An index drawn with the given relative weights (not all zero).
  size_t Weighted(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = Uniform() * total;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    for (size_t i = weights.size(); i > 0; --i) {
      if (weights[i - 1] > 0) return i - 1;
    }
    return 0;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  std::mt19937_64 engine_;
};

// ---------------------------------------------------------------------------------------------
// Dates as days since 1970-01-01 (proleptic Gregorian; H. Hinnant's civil algorithms).
// ---------------------------------------------------------------------------------------------

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string FormatDate(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(y), m, d);
  return buf;
}

// `date` must satisfy model::IsDate.
int64_t ParseDate(absl::string_view date) {
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (date[i] - '0');
    return v;
  };
  return DaysFromCivil(num(0, 4), static_cast<unsigned>(num(5, 2)),
                       static_cast<unsigned>(num(8, 2)));
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

// A UUIDv7 whose timestamp is `day` plus `ms_in_day` and whose random bits come from `rng`:
// deterministic, and lists ordered by id come out roughly in the order of the documents' dates.
std::string DemoId(Random& rng, int64_t day, int64_t ms_in_day) {
  const uint64_t ms = static_cast<uint64_t>(day * 86'400'000 + ms_in_day);
  const uint64_t r = rng.Bits();
  const uint64_t hi = (ms << 16) | (uint64_t{7} << 12) | (r & 0xFFF);
  const uint64_t lo = (uint64_t{2} << 62) | (rng.Bits() >> 2);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF),
                static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

// A time of day in the field's working hours, in milliseconds.
int64_t WorkingHoursMs(Random& rng) { return rng.Int(7 * 3'600'000, 18 * 3'600'000); }

// `x` rounded to `digits` significant digits: 123456 -> 123000.
double RoundSignificant(double x, int digits) {
  if (x <= 0) return 0;
  const double scale = std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(x))));
  return std::round(x * scale) / scale;
}

// Rounds to a multiple of `step`.
double RoundTo(double x, double step) { return std::round(x / step) * step; }

std::string ZeroPad(int64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(n));
  return buf;
}

// Splits `total` over `weights` in proportion, exactly (largest remainder; ties to the lower
// index, so the result is deterministic).
std::vector<int> Allocate(int total, const std::vector<double>& weights) {
  std::vector<int> out(weights.size(), 0);
  double sum = 0;
  for (double w : weights) sum += w;
  if (total <= 0 || sum <= 0) return out;
  std::vector<std::pair<double, size_t>> remainders;
  int given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = total * weights[i] / sum;
    out[i] = static_cast<int>(std::floor(exact));
    given += out[i];
    if (weights[i] > 0) remainders.push_back({exact - out[i], i});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total; k = (k + 1) % remainders.size(), ++given) {
    ++out[remainders[k].second];
  }
  return out;
}

// Keeps `status`'s code and says which demo document failed.
absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat("demo data, ", what, ": ", status.message()));
}

// ---------------------------------------------------------------------------------------------
// The plan of one project, decided before anything is written.
// ---------------------------------------------------------------------------------------------

struct ProjectPlan {
  int partner = 0;
  v1::ProjectKind kind = v1::PROJECT_KIND_UNSPECIFIED;
  const Country* country = nullptr;
  const Area* area = nullptr;
  v1::ProjectStatus status = v1::PROJECT_STATUS_UNSPECIFIED;
  int64_t start = 0;
  int64_t end = 0;
  // The last day a record may carry: min(end, as_of). Records exist only if >= start.
  int64_t last_record_day = 0;
  // Wells, surgeries or donations (by kind), and expenditures.
  int records = 0;
  int expenditures = 0;
  bool has_records() const {
    return status != v1::PROJECT_STATUS_PLANNED && last_record_day >= start;
  }
};

// Water, eye and school vocabulary.
struct DonationItemType {
  const char* name;
  double usd_min, usd_max;
  int quantity_min, quantity_max;
};

const std::vector<DonationItemType>& DonationItemTypes() {
  static const auto* items = new std::vector<DonationItemType>{
      {"double desk", 45, 75, 10, 60},   {"textbook", 3, 8, 40, 600},
      {"solar lamp", 8, 15, 20, 300},    {"chalkboard", 60, 120, 1, 12},
      {"tablet", 90, 180, 5, 40},        {"exercise book", 0.3, 0.6, 200, 2000},
      {"teacher's guide", 5, 12, 2, 20}, {"science kit", 40, 90, 1, 5},
      {"bookshelf", 80, 150, 1, 4},      {"school bag", 4, 9, 40, 400},
  };
  return *items;
}

// ---------------------------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------------------------

class DemoLoader {
 public:
  DemoLoader(Store& store, const DemoOptions& options)
      : store_(store),
        admin_(store),
        tracker_(store),
        who_(SystemPrincipal()),
        options_(options),
        rng_(options.seed),
        as_of_(ParseDate(options.as_of)) {}

  absl::Status Run();
  const DemoSummary& summary() const { return summary_; }

 private:
  absl::Status CheckPreconditions();
  void PlanProjects();
  absl::Status WritePartners();
  absl::Status WriteProject(int index, ProjectPlan& plan);
  absl::StatusOr<std::string> WriteSite(const ProjectPlan& plan, const std::string& project_id,
                                        const std::string& name, const std::string& district,
                                        int64_t day);
  absl::Status WriteRecord(v1::Record record, int64_t day, absl::string_view what);
  absl::Status WriteWells(const ProjectPlan& plan, const std::string& project_id);
  absl::Status WriteSurgeries(const ProjectPlan& plan, const std::string& project_id);
  absl::Status WriteDonations(const ProjectPlan& plan, const v1::Project& project);
  absl::Status WriteExpenditures(const ProjectPlan& plan, const v1::Project& project);

  v1::WellRecord MakeWell(const ProjectPlan& plan, int64_t visit);
  v1::WaterQualityTest MakeQualityTest(const Area& area, v1::WaterSource source, int64_t day);
  v1::Money Money(const std::string& currency, double major) const;
  std::string Village(const Country& country) { return rng_.Pick(country.villages); }
  // A day in [lo, hi]; `hi` when the range is empty.
  int64_t Day(int64_t lo, int64_t hi) { return rng_.Int(std::min(lo, hi), hi); }

  Store& store_;
  Admin admin_;
  Tracker tracker_;
  Principal who_;
  DemoOptions options_;
  Random rng_;
  int64_t as_of_;
  std::vector<std::string> partner_ids_;
  std::vector<ProjectPlan> plans_;
  // Next pseudonymous patient number per "CC-AREA" prefix; next voucher number per partner.
  std::map<std::string, int> next_patient_;
  std::map<int, int> next_voucher_;
  DemoSummary summary_;
};

absl::Status DemoLoader::CheckPreconditions() {
  // Runs inside the transaction, which holds the write lock: no other writer can add a project
  // between this check and the load.
  PageRequest one;
  one.page_size = 1;
  FS_ASSIGN_OR_RETURN(std::vector<v1::Project> projects,
                      store_.ListProjects(v1::ListProjectsRequest(), Scope(), one));
  if (!projects.empty()) {
    return absl::FailedPreconditionError(
        "demo data: the database already has projects; load demo data into a fresh database");
  }
  std::set<std::string> names;
  for (int i = 0; i < options_.partners; ++i) names.insert(PartnerTemplates()[i].name);
  PageRequest page;
  page.page_size = 1000;
  while (true) {
    FS_ASSIGN_OR_RETURN(std::vector<v1::Partner> partners, store_.ListPartners(page));
    for (const v1::Partner& p : partners) {
      if (names.count(p.name()) > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("demo data: a partner named \"", p.name(),
                         "\" already exists; load demo data into a fresh database"));
      }
    }
    if (static_cast<int>(partners.size()) < page.page_size) break;
    page.after_id = partners.back().id();
  }
  return absl::OkStatus();
}

void DemoLoader::PlanProjects() {
  const int n = options_.projects;
  const auto& templates = PartnerTemplates();
  std::vector<double> partner_weight;
  for (int i = 0; i < options_.partners; ++i) partner_weight.push_back(rng_.Uniform(0.6, 1.4));
  plans_.resize(n);
  for (int i = 0; i < n; ++i) {
    ProjectPlan& p = plans_[i];
    // Every partner gets a project before any gets a second.
    p.partner = i < options_.partners ? i : static_cast<int>(rng_.Weighted(partner_weight));
    const KindMix& mix = templates[p.partner].mix;
    static constexpr v1::ProjectKind kKinds[] = {v1::PROJECT_KIND_WELL, v1::PROJECT_KIND_CATARACT,
                                                 v1::PROJECT_KIND_CLASSROOM};
    p.kind = kKinds[rng_.Weighted({mix.well, mix.cataract, mix.classroom})];
  }
  // With 3 projects or more, every kind has one: take it from the most common kind.
  if (n >= 3) {
    for (v1::ProjectKind kind :
         {v1::PROJECT_KIND_WELL, v1::PROJECT_KIND_CATARACT, v1::PROJECT_KIND_CLASSROOM}) {
      std::map<v1::ProjectKind, int> count;
      for (const ProjectPlan& p : plans_) ++count[p.kind];
      if (count[kind] > 0) continue;
      v1::ProjectKind most = v1::PROJECT_KIND_WELL;
      for (const auto& [k, c] : count) {
        if (c > count[most]) most = k;
      }
      for (int i = n - 1; i >= 0; --i) {
        if (plans_[i].kind == most) {
          plans_[i].kind = kind;
          break;
        }
      }
    }
  }

  const int64_t first_start = DaysFromCivil(2022, 1, 10);
  for (ProjectPlan& p : plans_) {
    const PartnerTemplate& partner = templates[p.partner];
    p.country = &CountryByCode(rng_.Pick(partner.countries));
    p.area = &rng_.Pick(p.country->areas);
    // Months a project of this kind runs.
    int months = 0;
    switch (p.kind) {
      case v1::PROJECT_KIND_WELL:
        months = static_cast<int>(rng_.Int(12, 30));
        break;
      case v1::PROJECT_KIND_CATARACT:
        months = static_cast<int>(rng_.Int(6, 24));
        break;
      default:
        months = static_cast<int>(rng_.Int(6, 18));
    }
    if (rng_.Chance(0.07)) {
      // Planned: starts in the coming months.
      p.status = v1::PROJECT_STATUS_PLANNED;
      p.start = as_of_ + rng_.Int(14, 120);
    } else {
      p.start = Day(first_start, as_of_ - 21);
      p.status = v1::PROJECT_STATUS_ACTIVE;
    }
    p.end = p.start + months * 30 + rng_.Int(0, 29);
    if (p.status == v1::PROJECT_STATUS_ACTIVE) {
      if (p.end < as_of_) p.status = v1::PROJECT_STATUS_COMPLETED;
      if (rng_.Chance(0.04)) {
        // Cancelled part-way (insecurity, a funding gap): it ended on the cancellation date.
        p.status = v1::PROJECT_STATUS_CANCELLED;
        p.end = p.start + (p.end - p.start) * rng_.Int(20, 60) / 100;
        p.end = std::min(p.end, as_of_);
      }
    }
    p.last_record_day = std::min(p.end, as_of_);
  }
  // Every kind present gets a project that records data, so record counts are exact.
  for (v1::ProjectKind kind :
       {v1::PROJECT_KIND_WELL, v1::PROJECT_KIND_CATARACT, v1::PROJECT_KIND_CLASSROOM}) {
    ProjectPlan* first = nullptr;
    bool covered = false;
    for (ProjectPlan& p : plans_) {
      if (p.kind != kind) continue;
      if (first == nullptr) first = &p;
      covered = covered || p.has_records();
    }
    if (first != nullptr && !covered) {
      first->status = v1::PROJECT_STATUS_ACTIVE;
      first->start = as_of_ - 240;
      first->end = as_of_ + 240;
      first->last_record_day = as_of_;
    }
  }

  // How many records each project gets: more for longer-running projects, few for cancelled.
  for (v1::ProjectKind kind :
       {v1::PROJECT_KIND_WELL, v1::PROJECT_KIND_CATARACT, v1::PROJECT_KIND_CLASSROOM}) {
    std::vector<double> weights;
    std::vector<ProjectPlan*> members;
    for (ProjectPlan& p : plans_) {
      if (p.kind != kind) continue;
      double w = 0;
      if (p.has_records()) {
        const double years = static_cast<double>(p.last_record_day - p.start + 1) / 365.0;
        w = rng_.Uniform(0.5, 1.5) * std::min(1.0, 0.25 + years) *
            (p.status == v1::PROJECT_STATUS_CANCELLED ? 0.35 : 1.0);
      }
      weights.push_back(w);
      members.push_back(&p);
    }
    std::vector<int> counts = Allocate(options_.records_per_kind, weights);
    for (size_t i = 0; i < members.size(); ++i) members[i]->records = counts[i];
  }
  std::vector<double> weights;
  for (ProjectPlan& p : plans_) {
    const double months = static_cast<double>(p.last_record_day - p.start + 1) / 30.0;
    weights.push_back(p.has_records() ? std::max(1.0, months / 1.5) * rng_.Uniform(0.7, 1.3) : 0.0);
  }
  std::vector<int> counts = Allocate(options_.records_per_kind, weights);
  for (size_t i = 0; i < plans_.size(); ++i) plans_[i].expenditures = counts[i];
}

absl::Status DemoLoader::WritePartners() {
  const auto& templates = PartnerTemplates();
  for (int i = 0; i < options_.partners; ++i) {
    const PartnerTemplate& t = templates[i];
    v1::Partner partner;
    partner.set_id(DemoId(rng_, DaysFromCivil(2021, 6, 1) + 9 * i, WorkingHoursMs(rng_)));
    partner.set_name(t.name);
    for (const char* c : t.countries) partner.add_countries(c);
    absl::StatusOr<v1::Partner> created = admin_.CreatePartner(who_, partner);
    if (!created.ok()) {
      return Annotate(created.status(), absl::StrCat("partner \"", t.name, "\""));
    }
    partner_ids_.push_back(created->id());
    ++summary_.partners;
  }
  return absl::OkStatus();
}

v1::Money DemoLoader::Money(const std::string& currency, double major) const {
  v1::Money m;
  m.set_currency(currency);
  const int minor_units = std::max(0, model::CurrencyMinorUnits(currency));
  m.set_amount_minor(std::llround(major * std::pow(10.0, minor_units)));
  return m;
}

absl::Status DemoLoader::Run() {
  FS_RETURN_IF_ERROR(CheckPreconditions());
  PlanProjects();
  FS_RETURN_IF_ERROR(WritePartners());
  for (size_t i = 0; i < plans_.size(); ++i) {
    FS_RETURN_IF_ERROR(WriteProject(static_cast<int>(i), plans_[i]));
  }
  return absl::OkStatus();
}

absl::Status DemoLoader::WriteProject(int index, ProjectPlan& plan) {
  const PartnerTemplate& partner = PartnerTemplates()[plan.partner];
  const Country& country = *plan.country;
  const Area& area = *plan.area;
  const std::string district = rng_.Pick(area.districts);

  static const std::vector<const char*> kWellTitles = {
      "Borehole rehabilitation, $0",
      "Community borehole drilling, $0",
      "Solar-powered water points, $0",
      "Hand pump repair and water committees, $0",
      "Safe water for schools and health centres, $0",
      "Protected springs and shallow wells, $0",
  };
  static const std::vector<const char*> kCataractTitles = {
      "Free cataract surgery camps, $0",
      "Cataract outreach and surgery, $0",
      "Restoring sight: cataract campaign, $0",
      "Eye health and cataract surgery programme, $0",
  };
  static const std::vector<const char*> kClassroomTitles = {
      "Classroom equipment for primary schools, $0",
      "Desks and textbooks for rural schools, $0",
      "Solar lamps and learning materials, $0",
      "Digital classroom pilot, $0",
  };
  const char* kind_code = "WELL";
  const std::vector<const char*>* titles = &kWellTitles;
  if (plan.kind == v1::PROJECT_KIND_CATARACT) {
    kind_code = "EYE";
    titles = &kCataractTitles;
  } else if (plan.kind == v1::PROJECT_KIND_CLASSROOM) {
    kind_code = "EDU";
    titles = &kClassroomTitles;
  }
  const int64_t start_year = std::stoll(FormatDate(plan.start).substr(0, 4));
  std::string title = absl::Substitute(rng_.Pick(*titles), district);
  if (plan.status != v1::PROJECT_STATUS_PLANNED && rng_.Chance(0.3)) {
    absl::StrAppend(&title, " (", start_year, ")");
  }

  // The budget follows the planned work, at rough unit costs in US dollars: what an active
  // project recorded so far is the elapsed part of its plan, a cancelled one stopped early.
  double planned_units = static_cast<double>(rng_.Int(8, 40));
  if (plan.has_records()) {
    double done = 1.0;
    if (plan.status == v1::PROJECT_STATUS_ACTIVE) {
      done = std::clamp(static_cast<double>(as_of_ - plan.start) /
                            static_cast<double>(std::max<int64_t>(1, plan.end - plan.start)),
                        0.25, 1.0);
    } else if (plan.status == v1::PROJECT_STATUS_CANCELLED) {
      done = 0.4;
    }
    planned_units = std::max(1.0, plan.records / done);
  }
  double usd = 0;
  switch (plan.kind) {
    case v1::PROJECT_KIND_WELL:
      usd = 15'000 + planned_units * rng_.Uniform(6'500, 12'000);
      break;
    case v1::PROJECT_KIND_CATARACT:
      usd = 8'000 + planned_units * rng_.Uniform(110, 220);
      break;
    default:
      usd = 6'000 + planned_units * rng_.Uniform(900, 2'200);
  }
  static const auto* donor_weights = new std::vector<double>([] {
    std::vector<double> w;
    for (const Donor& d : Donors()) w.push_back(d.weight);
    return w;
  }());
  const Donor& donor = Donors()[rng_.Weighted(*donor_weights)];
  const std::string currency = donor.currency[0] == '\0' ? country.currency : donor.currency;

  v1::Project project;
  // Registered a month or a few before it starts (never after as_of).
  const int64_t created = std::min(as_of_, plan.start - rng_.Int(20, 120));
  project.set_id(DemoId(rng_, created, WorkingHoursMs(rng_)));
  project.set_partner_id(partner_ids_[plan.partner]);
  project.set_kind(plan.kind);
  project.set_title(title);
  project.set_country(country.code);
  project.set_admin_area(area.name);
  project.set_status(plan.status);
  project.set_start_date(FormatDate(plan.start));
  project.set_end_date(FormatDate(plan.end));
  // Some planned projects wait for their budget to be approved.
  if (plan.status != v1::PROJECT_STATUS_PLANNED || rng_.Chance(0.6)) {
    *project.mutable_budget() =
        Money(currency, RoundSignificant(usd * PerUsd(currency, country), 3));
  }
  project.set_donor(donor.name);
  // Locally funded projects are often not published to IATI.
  if (donor.currency[0] != '\0' || rng_.Chance(0.3)) {
    project.set_iati_identifier(
        absl::StrCat(partner.iati_org, "-", kind_code, "-", ZeroPad(index + 1, 4)));
  }
  absl::StatusOr<v1::Project> stored = tracker_.CreateProject(who_, project);
  if (!stored.ok()) {
    return Annotate(stored.status(), absl::StrCat("project \"", title, "\""));
  }
  ++summary_.projects;

  if (!plan.has_records()) {
    // Sites already surveyed for a project that has not started.
    const int surveyed = static_cast<int>(rng_.Int(0, 2));
    std::string previous;
    for (int i = 0; i < surveyed; ++i) {
      std::string name = Village(country);
      if (plan.kind == v1::PROJECT_KIND_WELL) absl::StrAppend(&name, " proposed borehole");
      if (plan.kind == v1::PROJECT_KIND_CATARACT) absl::StrAppend(&name, " Health Centre");
      if (plan.kind == v1::PROJECT_KIND_CLASSROOM) {
        name = absl::Substitute(country.school_pattern, name);
      }
      if (name == previous) absl::StrAppend(&name, " 2");
      previous = name;
      FS_RETURN_IF_ERROR(
          WriteSite(plan, stored->id(), name, rng_.Pick(area.districts), created).status());
    }
    return absl::OkStatus();
  }
  switch (plan.kind) {
    case v1::PROJECT_KIND_WELL:
      FS_RETURN_IF_ERROR(WriteWells(plan, stored->id()));
      break;
    case v1::PROJECT_KIND_CATARACT:
      FS_RETURN_IF_ERROR(WriteSurgeries(plan, stored->id()));
      break;
    default:
      FS_RETURN_IF_ERROR(WriteDonations(plan, *stored));
  }
  return WriteExpenditures(plan, *stored);
}

absl::StatusOr<std::string> DemoLoader::WriteSite(const ProjectPlan& plan,
                                                  const std::string& project_id,
                                                  const std::string& name,
                                                  const std::string& district, int64_t day) {
  const Country& c = *plan.country;
  const Area& a = *plan.area;
  v1::Site site;
  site.set_id(DemoId(rng_, std::min(day, as_of_), WorkingHoursMs(rng_)));
  site.set_project_id(project_id);
  site.set_name(name);
  // Near the area's centre (most within half the jitter), always inside the country's box.
  auto offset = [&] {
    return std::clamp(rng_.Normal(0, c.jitter_deg / 2), -c.jitter_deg, c.jitter_deg);
  };
  site.set_latitude_deg(RoundTo(std::clamp(a.lat + offset(), c.lat_min, c.lat_max), 1e-5));
  site.set_longitude_deg(RoundTo(std::clamp(a.lon + offset(), c.lon_min, c.lon_max), 1e-5));
  site.set_admin_area(district);
  absl::StatusOr<v1::Site> stored = tracker_.CreateSite(who_, site);
  if (!stored.ok()) return Annotate(stored.status(), absl::StrCat("site \"", name, "\""));
  ++summary_.sites;
  return stored->id();
}

absl::Status DemoLoader::WriteRecord(v1::Record record, int64_t day, absl::string_view what) {
  record.set_id(DemoId(rng_, day, WorkingHoursMs(rng_)));
  absl::StatusOr<v1::Record> stored = tracker_.CreateRecord(who_, std::move(record));
  if (!stored.ok()) return Annotate(stored.status(), what);
  return absl::OkStatus();
}

// --- Wells -------------------------------------------------------------------------------------

v1::WaterQualityTest DemoLoader::MakeQualityTest(const Area& area, v1::WaterSource source,
                                                 int64_t day) {
  // A parameter not measured stays unset.
  v1::WaterQualityTest t;
  t.set_tested_date(FormatDate(day));
  // E. coli: boreholes are mostly clean; shallow wells and springs less so.
  const double contaminated = source == v1::WATER_SOURCE_BOREHOLE ? 0.1 : 0.3;
  if (rng_.Chance(0.04)) {
    // Not measured: no incubator on this trip.
  } else if (rng_.Chance(contaminated)) {
    t.set_ecoli_cfu_per_100ml(std::round(std::exp(rng_.Uniform(0, std::log(250.0)))));
  } else {
    t.set_ecoli_cfu_per_100ml(0);
  }
  // Turbidity: mostly clear.
  if (rng_.Chance(0.05)) {
    // Not measured.
  } else if (rng_.Chance(0.07)) {
    t.set_turbidity_ntu(RoundTo(rng_.Uniform(5.5, 45), 0.1));
  } else {
    const double u = rng_.Uniform();
    t.set_turbidity_ntu(RoundTo(0.2 + 4.5 * u * u, 0.1));
  }
  // Arsenic: tested routinely where it is known to occur.
  const bool arsenic_area = area.arsenic_risk >= 0.1;
  if (!rng_.Chance(arsenic_area ? 0.95 : 0.55)) {
    // Not measured.
  } else if (rng_.Chance(area.arsenic_risk)) {
    const double u = rng_.Uniform();
    t.set_arsenic_ug_per_l(RoundTo(11 + 290 * u * u, 0.1));
  } else {
    const double u = rng_.Uniform();
    t.set_arsenic_ug_per_l(RoundTo(9.5 * u * u, 0.1));
  }
  // Fluoride: high in the Rift Valley and Senegal's groundnut basin.
  const bool fluoride_area = area.fluoride_risk >= 0.1;
  if (!rng_.Chance(fluoride_area ? 0.9 : 0.6)) {
    // Not measured.
  } else if (rng_.Chance(area.fluoride_risk)) {
    const double u = rng_.Uniform();
    t.set_fluoride_mg_per_l(RoundTo(1.6 + 10 * u * u, 0.01));
  } else {
    t.set_fluoride_mg_per_l(RoundTo(rng_.Uniform(0.05, 1.45), 0.01));
  }
  return t;
}

v1::WellRecord DemoLoader::MakeWell(const ProjectPlan& plan, int64_t visit) {
  v1::WellRecord w;
  const v1::WaterSource source = std::vector<v1::WaterSource>{
      v1::WATER_SOURCE_BOREHOLE, v1::WATER_SOURCE_PROTECTED_SHALLOW_WELL,
      v1::WATER_SOURCE_PROTECTED_SPRING}[rng_.Weighted({0.82, 0.11, 0.07})];
  w.set_water_source(source);
  v1::ExtractionTechnology tech = v1::EXTRACTION_TECHNOLOGY_HAND_PUMP;
  double lph_lo = 600, lph_hi = 1'200;
  int people_lo = 150, people_hi = 600;
  switch (source) {
    case v1::WATER_SOURCE_BOREHOLE: {
      static constexpr v1::ExtractionTechnology kTech[] = {
          v1::EXTRACTION_TECHNOLOGY_HAND_PUMP, v1::EXTRACTION_TECHNOLOGY_SOLAR_PUMP,
          v1::EXTRACTION_TECHNOLOGY_MOTORIZED_PUMP};
      tech = kTech[rng_.Weighted({0.65, 0.27, 0.08})];
      w.set_drilled_depth_m(RoundTo(rng_.Uniform(30, 150), 0.5));
      w.set_static_water_level_m(
          RoundTo(std::max(2.0, w.drilled_depth_m() * rng_.Uniform(0.1, 0.6)), 0.1));
      if (tech != v1::EXTRACTION_TECHNOLOGY_HAND_PUMP) {
        lph_lo = 1'500;
        lph_hi = 5'000;
        people_lo = 500;
        people_hi = 2'500;
      } else if (rng_.Chance(0.15)) {
        lph_lo = 300;  // a weak aquifer
        lph_hi = 600;
      }
      break;
    }
    case v1::WATER_SOURCE_PROTECTED_SHALLOW_WELL:
      tech =
          rng_.Chance(0.8) ? v1::EXTRACTION_TECHNOLOGY_HAND_PUMP : v1::EXTRACTION_TECHNOLOGY_BUCKET;
      w.set_drilled_depth_m(RoundTo(rng_.Uniform(8, 25), 0.5));
      w.set_static_water_level_m(RoundTo(w.drilled_depth_m() * rng_.Uniform(0.2, 0.7), 0.1));
      lph_lo = 300;
      lph_hi = 900;
      people_hi = 450;
      break;
    default:
      // A spring box fed by gravity: nothing is drilled.
      tech = v1::EXTRACTION_TECHNOLOGY_GRAVITY;
      lph_lo = 400;
      lph_hi = 2'500;
      people_hi = 900;
  }
  w.set_extraction(tech);
  w.set_yield_lph(RoundTo(rng_.Uniform(lph_lo, lph_hi), 10));
  // About 75 % functional, 15 % partly, 10 % not: solar pumps a little better.
  const double functional = tech == v1::EXTRACTION_TECHNOLOGY_SOLAR_PUMP ? 0.8 : 0.74;
  static constexpr v1::FunctionalStatus kStatus[] = {v1::FUNCTIONAL_STATUS_FUNCTIONAL,
                                                     v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL,
                                                     v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL};
  w.set_functional_status(kStatus[rng_.Weighted({functional, 0.15, 0.85 - functional})]);
  w.set_population_served(static_cast<int32_t>(RoundTo(rng_.Uniform(people_lo, people_hi), 5)));

  // Commissioned by this project, or years ago and rehabilitated now; a few unknown.
  int64_t commissioned = Day(plan.start, visit);
  if (rng_.Chance(0.15)) commissioned = Day(DaysFromCivil(2004, 1, 1), plan.start - 365);
  if (!rng_.Chance(0.05)) w.set_commissioned_date(FormatDate(commissioned));
  w.set_visit_date(FormatDate(visit));

  // 1-3 tests, oldest first, the last on the visit day.
  const int tests = 1 + static_cast<int>(rng_.Weighted({0.45, 0.35, 0.2}));
  std::vector<int64_t> days;
  for (int i = 0; i + 1 < tests; ++i) {
    days.push_back(Day(std::max(commissioned, plan.start), visit));
  }
  days.push_back(visit);
  std::sort(days.begin(), days.end());
  for (int64_t d : days) *w.add_quality_tests() = MakeQualityTest(*plan.area, source, d);

  static const std::vector<const char*> kBroken = {
      "Pump handle and rods broken; spare parts requested from the district.",
      "Dry since the last dry season; hydrogeological survey requested.",
      "Solar controller failed; awaiting replacement.",
      "Rising main leaking; water committee has no funds for repair.",
  };
  static const std::vector<const char*> kPartly = {
      "Low yield in the dry season; queues in the morning.",
      "Apron cracked and drainage channel blocked.",
      "Handle worn; pumping takes twice as long as at commissioning.",
  };
  static const std::vector<const char*> kFine = {
      "Water committee collects user fees monthly.",
      "Caretaker trained in preventive maintenance.",
      "Fence repaired by the community.",
      "Users report good taste and clear water.",
  };
  if (w.functional_status() == v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL) {
    w.set_notes(rng_.Pick(kBroken));
  } else if (w.functional_status() == v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL && rng_.Chance(0.7)) {
    w.set_notes(rng_.Pick(kPartly));
  } else if (rng_.Chance(0.15)) {
    w.set_notes(rng_.Pick(kFine));
  }
  return w;
}

absl::Status DemoLoader::WriteWells(const ProjectPlan& plan, const std::string& project_id) {
  std::set<std::string> names;
  for (int i = 0; i < plan.records; ++i) {
    const int64_t visit = Day(plan.start + 30, plan.last_record_day);
    v1::Record record;
    record.set_project_id(project_id);
    *record.mutable_well() = MakeWell(plan, visit);
    const v1::WellRecord& w = record.well();
    // One site per water point, named as the community calls it.
    const char* noun = w.water_source() == v1::WATER_SOURCE_BOREHOLE           ? "borehole"
                       : w.water_source() == v1::WATER_SOURCE_PROTECTED_SPRING ? "protected spring"
                                                                               : "shallow well";
    std::string base = absl::StrCat(Village(*plan.country), " ", noun);
    std::string name = base;
    for (int k = 2; !names.insert(name).second; ++k) name = absl::StrCat(base, " ", k);
    const int64_t site_day =
        w.commissioned_date().empty() ? visit : std::min(visit, ParseDate(w.commissioned_date()));
    FS_ASSIGN_OR_RETURN(std::string site_id,
                        WriteSite(plan, project_id, name, rng_.Pick(plan.area->districts),
                                  std::max(site_day, plan.start - 30)));
    record.set_site_id(site_id);
    FS_RETURN_IF_ERROR(WriteRecord(std::move(record), visit, absl::StrCat("well at ", name)));
    ++summary_.wells;
  }
  return absl::OkStatus();
}

// --- Cataract surgeries ------------------------------------------------------------------------

// WHO outcome categories as the generator thinks of them.
enum Category { kGood = 0, kBorderline = 1, kPoor = 2 };

// Acuities from worst to best, one step a chart line: HM, CF, 1/60, 3/60 (poor); 6/60, 6/36,
// 6/24 (borderline); 6/18, 6/12, 6/9, 6/6 (good); in the partner's notation.
const std::vector<const char*>& Ladder(Notation notation) {
  static const auto* metres = new std::vector<const char*>{
      "HM", "CF", "1/60", "3/60", "6/60", "6/36", "6/24", "6/18", "6/12", "6/9", "6/6"};
  static const auto* feet =
      new std::vector<const char*>{"HM",    "CF",    "20/1200", "20/400", "20/200", "20/120",
                                   "20/80", "20/60", "20/40",   "20/30",  "20/20"};
  static const auto* logmar = new std::vector<const char*>{
      "HM",         "CF",          "logMAR 1.78", "logMAR 1.3",  "logMAR 1.0", "logMAR 0.78",
      "logMAR 0.6", "logMAR 0.48", "logMAR 0.3",  "logMAR 0.18", "logMAR 0.0"};
  switch (notation) {
    case Notation::kFeet:
      return *feet;
    case Notation::kLogMar:
      return *logmar;
    default:
      return *metres;
  }
}

// The ladder step of a presenting acuity of the category.
size_t StepOf(Random& rng, Category c) {
  switch (c) {
    case kGood:
      return 10 - rng.Weighted({0.1, 0.3, 0.35, 0.25});  // 6/6 .. 6/18
    case kBorderline:
      return 6 - rng.Weighted({0.45, 0.35, 0.2});  // 6/24 .. 6/60
    default:
      return 3 - rng.Weighted({0.5, 0.15, 0.25, 0.1});  // 3/60 .. HM
  }
}

absl::Status DemoLoader::WriteSurgeries(const ProjectPlan& plan, const std::string& project_id) {
  if (plan.records == 0) return absl::OkStatus();
  const Country& country = *plan.country;
  const Area& area = *plan.area;
  const int partner_no = plan.partner + 1;
  const std::vector<const char*>& ladder = Ladder(PartnerTemplates()[plan.partner].notation);

  // Eye camps: a hospital or health centre hosts several camps of a few days each.
  struct Camp {
    std::string site_id;
    int64_t first_day;
    int days;
  };
  const int site_count = static_cast<int>(std::min<int64_t>(4, 1 + plan.records / 40));
  std::vector<std::string> site_ids;
  std::set<std::string> names;
  for (int i = 0; i < site_count; ++i) {
    const std::string district = rng_.Pick(area.districts);
    std::string name = i == 0 ? absl::StrCat(district, " District Hospital eye unit")
                              : absl::StrCat(Village(country), " Health Centre (outreach camp)");
    if (!names.insert(name).second) absl::StrAppend(&name, " ", i + 1);
    FS_ASSIGN_OR_RETURN(std::string id, WriteSite(plan, project_id, name, district, plan.start));
    site_ids.push_back(id);
  }
  std::vector<Camp> camps;
  const int camp_count = std::max(1, plan.records / 25);
  for (int i = 0; i < camp_count; ++i) {
    camps.push_back({rng_.Pick(site_ids), Day(plan.start, plan.last_record_day),
                     static_cast<int>(rng_.Int(2, 5))});
  }
  std::vector<std::string> surgeons;
  for (int i = 0, n = static_cast<int>(rng_.Int(2, 4)); i < n; ++i) {
    surgeons.push_back(absl::StrCat(country.code, "-OS-", partner_no, ZeroPad(rng_.Int(1, 40), 2)));
  }

  // Patients whose first eye was operated here, for the few second-eye operations.
  struct FirstEye {
    v1::CataractSurgery surgery;
    int64_t day;
    std::string site_id;
  };
  std::vector<FirstEye> first_eyes;
  static const std::vector<const char*> kComplications = {
      "posterior capsule rupture",   "corneal oedema", "vitreous loss",       "iris prolapse",
      "raised intraocular pressure", "hyphaema",       "retained lens matter"};

  for (int i = 0; i < plan.records; ++i) {
    v1::CataractSurgery s;
    int64_t day = 0;
    std::string site_id;
    bool second_eye = false;
    if (!first_eyes.empty() && rng_.Chance(0.1)) {
      const size_t pick = static_cast<size_t>(rng_.Int(0, first_eyes.size() - 1));
      const FirstEye first = first_eyes[pick];
      const int64_t later = first.day + rng_.Int(28, 180);
      if (later <= plan.last_record_day) {
        // A patient has two eyes: take this one off the list.
        first_eyes[pick] = first_eyes.back();
        first_eyes.pop_back();
        second_eye = true;
        s.set_patient_ref(first.surgery.patient_ref());
        s.set_age_years(
            std::min(90, first.surgery.age_years() + (later - first.day > 120 ? 1 : 0)));
        s.set_sex(first.surgery.sex());
        s.set_eye(first.surgery.eye() == v1::EYE_RIGHT ? v1::EYE_LEFT : v1::EYE_RIGHT);
        day = later;
        site_id = first.site_id;
      }
    }
    if (!second_eye) {
      const Camp& camp = rng_.Pick(camps);
      day = std::min(plan.last_record_day, camp.first_day + rng_.Int(0, camp.days - 1));
      site_id = camp.site_id;
      const std::string prefix = absl::StrCat(country.code, "-", area.code);
      auto [it, inserted] = next_patient_.try_emplace(prefix, static_cast<int>(rng_.Int(100, 900)));
      s.set_patient_ref(absl::StrCat(prefix, "-", ZeroPad(it->second++, 6)));
      s.set_age_years(static_cast<int32_t>(std::clamp(std::lround(rng_.Normal(66, 10)), 40L, 90L)));
      s.set_sex(rng_.Chance(0.55) ? v1::SEX_FEMALE : v1::SEX_MALE);
      s.set_eye(rng_.Chance(0.5) ? v1::EYE_RIGHT : v1::EYE_LEFT);
    }
    s.set_surgery_date(FormatDate(day));
    s.set_surgeon_ref(rng_.Pick(surgeons));
    static constexpr v1::SurgicalTechnique kTechniques[] = {
        v1::SURGICAL_TECHNIQUE_SICS, v1::SURGICAL_TECHNIQUE_PHACO, v1::SURGICAL_TECHNIQUE_ECCE};
    s.set_technique(kTechniques[rng_.Weighted({0.78, 0.18, 0.04})]);
    s.set_iol_implanted(rng_.Chance(s.technique() == v1::SURGICAL_TECHNIQUE_ECCE ? 0.85 : 0.975));
    // Pre-operative: mostly blind or severely impaired (CF, HM, PL, 1/60 .. 6/36).
    if (!rng_.Chance(0.02)) {
      const size_t preop = rng_.Weighted({0.25, 0.3, 0.07, 0.15, 0.1, 0.05, 0.08});
      s.set_preop_va(preop == 6 ? "PL" : ladder[preop]);
    }
    // Complications in about 6 % of eyes, occasionally two.
    if (rng_.Chance(0.06)) {
      const size_t first = static_cast<size_t>(rng_.Int(0, kComplications.size() - 1));
      s.add_complications(kComplications[first]);
      if (rng_.Chance(0.2)) {
        s.add_complications(kComplications[(first + 1) % kComplications.size()]);
      }
    }
    // The outcome at 4-12 weeks (~70 % good, 20 % borderline, 10 % poor); earlier visits are
    // often a category worse (oedema, uncorrected refraction), complications make it worse.
    Category final_category = static_cast<Category>(rng_.Weighted({0.7, 0.2, 0.1}));
    if (s.complications_size() > 0 && rng_.Chance(0.5)) {
      final_category = static_cast<Category>(std::min(2, final_category + 1));
    }
    auto worse = [&](double p) {
      return static_cast<Category>(std::min(2, final_category + (rng_.Chance(p) ? 1 : 0)));
    };
    struct Stage {
      v1::FollowUpStage stage;
      double share;
      int64_t min_days, max_days;
      Category category;
    };
    // Shares a little above the targets (95 %, 60 %, 40 %): visits after as_of drop out.
    const Stage stages[] = {
        {v1::FOLLOW_UP_STAGE_DAY_1, 0.96, 1, 3, worse(0.35)},
        {v1::FOLLOW_UP_STAGE_WEEKS_1_3, 0.625, 7, 21, worse(0.15)},
        {v1::FOLLOW_UP_STAGE_WEEKS_4_12, 0.43, 28, 84, final_category},
    };
    for (const Stage& stage : stages) {
      if (!rng_.Chance(stage.share)) continue;
      // Day 1 is nearly always the day after surgery.
      const int64_t after = stage.stage == v1::FOLLOW_UP_STAGE_DAY_1 && rng_.Chance(0.85)
                                ? 1
                                : rng_.Int(stage.min_days, stage.max_days);
      if (day + after > as_of_) continue;  // not happened yet
      v1::FollowUpVisit* visit = s.add_follow_ups();
      visit->set_stage(stage.stage);
      visit->set_visit_date(FormatDate(day + after));
      const size_t step = StepOf(rng_, stage.category);
      visit->set_presenting_va(ladder[step]);
      if (stage.stage == v1::FOLLOW_UP_STAGE_WEEKS_4_12 && rng_.Chance(0.5)) {
        // Pinhole: the same or one or two lines better.
        visit->set_best_corrected_va(
            ladder[std::min(ladder.size() - 1, step + static_cast<size_t>(rng_.Int(0, 2)))]);
      }
    }
    if (!second_eye) first_eyes.push_back({s, day, site_id});

    v1::Record record;
    record.set_project_id(project_id);
    record.set_site_id(site_id);
    *record.mutable_cataract_surgery() = s;
    FS_RETURN_IF_ERROR(
        WriteRecord(std::move(record), day, absl::StrCat("surgery of ", s.patient_ref())));
    ++summary_.surgeries;
  }
  return absl::OkStatus();
}

// --- Classroom donations -----------------------------------------------------------------------

absl::Status DemoLoader::WriteDonations(const ProjectPlan& plan, const v1::Project& project) {
  if (plan.records == 0) return absl::OkStatus();
  const Country& country = *plan.country;
  const std::string& project_id = project.id();
  // Unit values in the budget's currency (projects that record data always have a budget).
  const std::string currency =
      project.has_budget() ? project.budget().currency() : std::string("USD");
  // Most schools receive one delivery, some two or three.
  const int school_count =
      std::max(1, static_cast<int>(std::ceil(plan.records * rng_.Uniform(0.6, 0.85))));
  struct School {
    std::string site_id;
    std::string name;
    int enrolment;
  };
  std::vector<School> schools;
  std::set<std::string> names;
  for (int i = 0; i < school_count; ++i) {
    const std::string base = absl::Substitute(country.school_pattern, Village(country));
    std::string name = base;
    for (int k = 2; !names.insert(name).second; ++k) name = absl::StrCat(base, " ", k);
    FS_ASSIGN_OR_RETURN(std::string id, WriteSite(plan, project_id, name,
                                                  rng_.Pick(plan.area->districts), plan.start));
    const double u = rng_.Uniform();
    schools.push_back({id, name, static_cast<int>(40 + 860 * u * u)});
  }
  static const std::vector<const char*> kReceivedBy = {
      "Head teacher", "Deputy head teacher", "School management committee chair",
      "Storekeeper",  "Acting head teacher", "Parent-teacher association chair"};
  const auto& types = DonationItemTypes();

  for (int i = 0; i < plan.records; ++i) {
    const School& school = i < school_count ? schools[i] : rng_.Pick(schools);
    const int64_t day = Day(plan.start + 14, plan.last_record_day);
    v1::ClassroomDonation d;
    d.set_school_name(school.name);
    d.set_delivered_date(FormatDate(day));
    d.set_received_by(rng_.Pick(kReceivedBy));
    const int lines = static_cast<int>(rng_.Int(1, 5));
    std::set<size_t> chosen;
    bool shortfall = false, trains_teachers = false;
    while (static_cast<int>(chosen.size()) < lines) {
      chosen.insert(static_cast<size_t>(rng_.Int(0, types.size() - 1)));
    }
    for (size_t t : chosen) {
      const DonationItemType& type = types[t];
      v1::DonationItem* item = d.add_items();
      item->set_item_type(type.name);
      const int quantity = static_cast<int>(rng_.Int(type.quantity_min, type.quantity_max));
      item->set_quantity(quantity);
      int received = quantity;
      // Occasionally short: broken in transit, or a carton that never arrived.
      if (rng_.Chance(0.005)) {
        received = 0;
      } else if (rng_.Chance(0.05)) {
        received = quantity - std::max(1, static_cast<int>(quantity * rng_.Uniform(0.02, 0.15)));
      }
      shortfall = shortfall || received < quantity;
      item->set_quantity_received(std::max(0, received));
      if (!rng_.Chance(0.1)) {
        const double major = RoundSignificant(
            rng_.Uniform(type.usd_min, type.usd_max) * PerUsd(currency, country), 2);
        *item->mutable_unit_value() = Money(currency, major);
      }
      trains_teachers = trains_teachers || t == 4 || t == 7;  // tablets, science kits
    }
    static constexpr v1::ItemCondition kConditions[] = {
        v1::ITEM_CONDITION_GOOD, v1::ITEM_CONDITION_DAMAGED, v1::ITEM_CONDITION_MISSING_PARTS};
    d.set_condition(shortfall ? kConditions[rng_.Weighted({0.2, 0.2, 0.6})]
                              : kConditions[rng_.Weighted({0.94, 0.06, 0.0})]);
    d.set_students_reached(
        std::max(40, static_cast<int>(school.enrolment * rng_.Uniform(0.5, 1.0))));
    d.set_teachers_trained(
        static_cast<int32_t>(trains_teachers ? rng_.Int(2, 12) : rng_.Int(0, 3)));

    v1::Record record;
    record.set_project_id(project_id);
    record.set_site_id(school.site_id);
    *record.mutable_classroom_donation() = d;
    FS_RETURN_IF_ERROR(
        WriteRecord(std::move(record), day, absl::StrCat("donation to ", school.name)));
    ++summary_.donations;
  }
  return absl::OkStatus();
}

// --- Expenditures ------------------------------------------------------------------------------

absl::Status DemoLoader::WriteExpenditures(const ProjectPlan& plan, const v1::Project& project) {
  if (plan.expenditures == 0 || !project.has_budget()) return absl::OkStatus();
  const std::string& currency = project.budget().currency();
  const double budget_major = static_cast<double>(project.budget().amount_minor()) /
                              std::pow(10.0, std::max(0, model::CurrencyMinorUnits(currency)));

  // The share of the budget spent so far.
  double share = 0;
  switch (plan.status) {
    case v1::PROJECT_STATUS_COMPLETED:
      share = rng_.Uniform(0.86, 1.01);
      break;
    case v1::PROJECT_STATUS_CANCELLED:
      share = rng_.Uniform(0.1, 0.45);
      break;
    default: {
      const double elapsed = static_cast<double>(as_of_ - plan.start) /
                             static_cast<double>(std::max<int64_t>(1, plan.end - plan.start));
      share = std::min(0.98, std::clamp(elapsed, 0.02, 1.0) * rng_.Uniform(0.75, 1.05));
    }
  }

  using C = v1::ExpenditureCategory;
  struct Line {
    C category;
    double frequency;
    double size;  // relative size of one payment
    std::vector<const char*> descriptions;
  };
  std::vector<Line> lines;
  switch (plan.kind) {
    case v1::PROJECT_KIND_WELL:
      lines = {{v1::EXPENDITURE_CATEGORY_CONSTRUCTION,
                0.3,
                3.0,
                {"Drilling contractor, interim certificate", "Borehole rehabilitation works",
                 "Apron, soak-away and cattle trough", "Pump house and fencing"}},
               {v1::EXPENDITURE_CATEGORY_EQUIPMENT,
                0.2,
                2.0,
                {"India Mark II hand pumps and rods", "Solar panels and submersible pump",
                 "uPVC rising mains and fittings", "Water quality test kits"}},
               {v1::EXPENDITURE_CATEGORY_STAFF,
                0.18,
                1.2,
                {"Field engineer salary", "Hydrogeologist fees", "Community mobiliser stipends"}},
               {v1::EXPENDITURE_CATEGORY_TRANSPORT,
                0.14,
                0.6,
                {"Rig mobilisation", "Fuel and vehicle hire", "Spare parts delivery"}},
               {v1::EXPENDITURE_CATEGORY_TRAINING,
                0.1,
                0.8,
                {"Water committee training", "Pump mechanic training", "Hygiene promotion"}},
               {v1::EXPENDITURE_CATEGORY_OTHER,
                0.08,
                0.4,
                {"Laboratory water analysis", "Bank charges", "Community meeting costs"}}};
      break;
    case v1::PROJECT_KIND_CATARACT:
      lines = {{v1::EXPENDITURE_CATEGORY_MEDICAL_SUPPLIES,
                0.32,
                2.0,
                {"Intraocular lenses", "Viscoelastic and sutures", "Eye drops and dressings",
                 "Surgical consumables for camp"}},
               {v1::EXPENDITURE_CATEGORY_STAFF,
                0.22,
                1.5,
                {"Ophthalmic surgeon allowances", "Theatre nurse allowances",
                 "Screening team per diems"}},
               {v1::EXPENDITURE_CATEGORY_TRANSPORT,
                0.2,
                0.6,
                {"Patient transport to camp", "Team travel and fuel", "Follow-up visit transport"}},
               {v1::EXPENDITURE_CATEGORY_EQUIPMENT,
                0.1,
                2.5,
                {"Operating microscope service", "Autoclave", "Portable slit lamp"}},
               {v1::EXPENDITURE_CATEGORY_TRAINING,
                0.08,
                0.8,
                {"SICS training for surgeons", "Community screener training"}},
               {v1::EXPENDITURE_CATEGORY_OTHER,
                0.08,
                0.4,
                {"Radio announcements for screening", "Patient meals during camp"}}};
      break;
    default:
      lines = {
          {v1::EXPENDITURE_CATEGORY_EQUIPMENT,
           0.4,
           2.0,
           {"Desks from local carpenters", "Textbook order", "Solar lamps",
            "Tablets and charging station"}},
          {v1::EXPENDITURE_CATEGORY_TRANSPORT,
           0.18,
           0.6,
           {"Truck hire for deliveries", "Fuel for distribution"}},
          {v1::EXPENDITURE_CATEGORY_TRAINING,
           0.14,
           0.8,
           {"Teacher training on digital content", "Head teacher workshop"}},
          {v1::EXPENDITURE_CATEGORY_STAFF,
           0.12,
           1.2,
           {"Education officer salary", "Monitoring visits"}},
          {v1::EXPENDITURE_CATEGORY_CONSTRUCTION,
           0.08,
           2.5,
           {"Classroom roof repairs", "Storage room door and locks"}},
          {v1::EXPENDITURE_CATEGORY_OTHER, 0.08, 0.4, {"Bank charges", "Delivery note printing"}}};
  }
  std::vector<double> frequencies;
  for (const Line& l : lines) frequencies.push_back(l.frequency);

  struct Payment {
    const Line* line;
    double weight;
    int64_t day;
  };
  std::vector<Payment> payments;
  double total_weight = 0;
  for (int i = 0; i < plan.expenditures; ++i) {
    const Line& line = lines[rng_.Weighted(frequencies)];
    const double w = line.size * rng_.Uniform(0.4, 1.6);
    total_weight += w;
    payments.push_back({&line, w, Day(plan.start, plan.last_record_day)});
  }
  const int minor_units = std::max(0, model::CurrencyMinorUnits(currency));
  const double scale = std::pow(10.0, minor_units);
  const int64_t target_minor = std::llround(budget_major * share * scale);
  int& voucher =
      next_voucher_.try_emplace(plan.partner, static_cast<int>(rng_.Int(100, 900))).first->second;
  for (const Payment& p : payments) {
    // Amounts in whole units mostly, to the cent sometimes; never below one unit.
    double major = std::floor(static_cast<double>(target_minor) * p.weight / total_weight) / scale;
    if (minor_units > 0 && rng_.Chance(0.35)) {
      major = std::floor(major * scale) / scale;
    } else {
      major = std::floor(major);
    }
    major = std::max(major, 1.0);
    v1::Expenditure e;
    *e.mutable_amount() = Money(currency, major);
    e.set_category(p.line->category);
    e.set_spent_date(FormatDate(p.day));
    e.set_receipt_ref(absl::StrCat("PV-", plan.country->code, "-", FormatDate(p.day).substr(0, 4),
                                   "-", ZeroPad(voucher++, 5)));
    e.set_description(rng_.Pick(p.line->descriptions));
    v1::Record record;
    record.set_project_id(project.id());
    *record.mutable_expenditure() = e;
    FS_RETURN_IF_ERROR(
        WriteRecord(std::move(record), p.day, absl::StrCat("expenditure ", e.receipt_ref())));
    ++summary_.expenditures;
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const DemoOptions& o) {
  const int max_partners = static_cast<int>(PartnerTemplates().size());
  if (o.partners < 1 || o.partners > max_partners) {
    return absl::InvalidArgumentError(absl::StrCat("demo options.partners: must be within [1, ",
                                                   max_partners, "], got ", o.partners));
  }
  if (o.projects < 0 || o.projects > 20'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("demo options.projects: must be within [0, 20000], got ", o.projects));
  }
  if (o.records_per_kind < 0 || o.records_per_kind > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "demo options.records_per_kind: must be within [0, 1000000], got ", o.records_per_kind));
  }
  if (!model::IsDate(o.as_of) || o.as_of < "2023-01-01" || o.as_of > "2100-12-31") {
    return absl::InvalidArgumentError(absl::StrCat(
        "demo options.as_of: must be a YYYY-MM-DD date in 2023..2100, got \"", o.as_of, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DemoSummary> LoadDemoData(Store& store, const DemoOptions& options) {
  FS_RETURN_IF_ERROR(CheckOptions(options));
  DemoLoader loader(store, options);
  FS_RETURN_IF_ERROR(store.RunInTransaction([&] { return loader.Run(); }));
  return loader.summary();
}

}  // namespace fieldsync::server
